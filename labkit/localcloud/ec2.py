from __future__ import annotations
class _Stub:
    def summary(self): return {}
    def stop_all(self): pass
    def after_reset(self): pass
def install(cloud): return _Stub()
