"""EventBridge's schedule expressions: when a rule is due, and the event it sends.

``rate(N unit)`` counts from when the rule was put; ``cron(minutes hours day-of-month month day-of-week year)``
is AWS's six-field cron (day-of-week 1-7 = SUN-SAT, ``?`` for "any"), in UTC. The reading itself is
:mod:`labkit.schedule_expressions` (no moto in it): the lab's checks judge a schedule by the same instants the
local cloud fires it at.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from labkit.schedule_expressions import next_after

__all__ = ["next_after", "scheduled_event"]


def scheduled_event(rule: Any, instant: dt.datetime) -> dict[str, Any]:
    """The payload AWS sends for a scheduled rule."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": rule.account_id, "time": instant.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": rule.region_name,
            "resources": [rule.arn], "detail": {}}
