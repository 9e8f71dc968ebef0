"""The local cloud's changes to moto's CloudWatch Logs (listed, checked and applied by
:mod:`labkit.localcloud.core.patches`)."""
from __future__ import annotations

from labkit.localcloud.core.clock import lab_utcnow
from labkit.localcloud.core.patches import Patch


def patches() -> list[Patch]:
    """The CloudWatch Logs patches."""
    from moto.logs import models as logs_models

    return [Patch(logs_models, "utcnow", "Logs accepts events in a window around lab time, not real time",
                  lab_utcnow)]
