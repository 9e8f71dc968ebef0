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

from labkit.schedule_expressions import next_after, rate_period

__all__ = ["next_after", "scheduled_event", "skip_older"]


def skip_older(expression: str, next_due: dt.datetime, oldest: dt.datetime) -> tuple[dt.datetime, int]:
    """Move past every instant before ``oldest``: the new next instant and how many were skipped."""
    period = rate_period(expression)
    if period is not None and next_due < oldest:  # no need to walk a rate(1 minute) over weeks one by one
        skipped = -(-(oldest - next_due) // period)
        return next_due + skipped * period, skipped
    skipped = 0
    while next_due < oldest:
        next_due, skipped = next_after(expression, next_due), skipped + 1
    return next_due, skipped


def scheduled_event(rule: Any, instant: dt.datetime) -> dict[str, Any]:
    """The payload AWS sends for a scheduled rule."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": rule.account_id, "time": instant.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": rule.region_name,
            "resources": [rule.arn], "detail": {}}
