"""moto's models are not kept after their records are gone (the daemon's core patch on ``BaseModel.__new__``):
moto appended every model it made to a class-wide list for its dashboard, so each order's log events stayed in the
daemon's memory for its whole life, deleted or not."""
from __future__ import annotations

import gc
import time
import weakref

from tests.helpers.moto_patched import patched_moto

ACCOUNT = "000000000028"  # an account of this test's own: moto's backends are global to the process
REGION = "us-east-1"


def _patched_logs_backend():
    from moto.backends import get_backend

    patched_moto()
    return get_backend("logs")[ACCOUNT][REGION]


def test_a_deleted_log_groups_events_are_freed():
    from moto.logs.models import LogEvent, LogGroup

    logs = _patched_logs_backend()
    now_ms = int(time.time() * 1000)
    logs.create_log_group("/aws/lambda/untracked", tags={})
    logs.create_log_stream("/aws/lambda/untracked", "2026/12/05/[$LATEST]abc")
    logs.put_log_events("/aws/lambda/untracked", "2026/12/05/[$LATEST]abc",
                        [{"timestamp": now_ms - 1000 + n, "message": f"line {n}"} for n in range(50)])
    group = logs.groups["/aws/lambda/untracked"]
    events = group.streams["2026/12/05/[$LATEST]abc"].events
    assert len(events) == 50 and isinstance(events[0], LogEvent)
    kept = [weakref.ref(event) for event in events] + [weakref.ref(group)]
    del events, group

    logs.delete_log_group("/aws/lambda/untracked")
    gc.collect()

    assert [ref for ref in kept if ref() is not None] == []
    assert getattr(LogEvent, "instances_tracked", []) == [] and getattr(LogGroup, "instances_tracked", []) == []
