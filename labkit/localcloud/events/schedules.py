"""EventBridge's schedule expressions: when a rule is due, and the event it sends.

``rate(N unit)`` counts from when the rule was put; ``cron(minutes hours day-of-month month day-of-week year)``
is AWS's six-field cron (day-of-week 1-7 = SUN-SAT, ``?`` for "any"), in UTC.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from croniter import croniter

UTC = dt.timezone.utc
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
CRON = re.compile(r"^cron\((.+)\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def next_after(expression: str, after: dt.datetime) -> dt.datetime:
    """The first instant strictly after ``after`` at which ``expression`` (AWS syntax) is due."""
    rate = RATE.match(expression)
    if rate:
        return after + dt.timedelta(seconds=int(rate.group(1)) * UNIT_SECONDS[rate.group(2).rstrip("s")])
    cron = CRON.match(expression)
    if not cron:
        raise ValueError(f"not a schedule expression: {expression!r}")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ValueError(f"AWS cron needs six fields (minutes hours day-of-month month day-of-week year): {expression}")
    minute, hour, dom, month, dow, year = fields
    dow = re.sub(r"(?<![#\d])(\d)", lambda m: str(int(m.group(1)) - 1), dow)  # AWS 1-7 = SUN-SAT; cron 0-6
    spec = " ".join(f.replace("?", "*") for f in (minute, hour, dom, month, dow))
    candidate: dt.datetime = croniter(spec, after.astimezone(UTC)).get_next(dt.datetime)
    for _ in range(2000):
        if _year_matches(year, candidate.year):
            return candidate.astimezone(UTC)
        candidate = croniter(spec, candidate).get_next(dt.datetime)
    raise ValueError(f"{expression} is never due again")


def _year_matches(field: str, year: int) -> bool:
    if field in ("*", "?"):
        return True
    for part in field.split(","):
        low, _, high = part.partition("-")
        if int(low) <= year <= int(high or low):
            return True
    return False


def scheduled_event(rule: Any, instant: dt.datetime) -> dict[str, Any]:
    """The payload AWS sends for a scheduled rule."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": rule.account_id, "time": instant.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": rule.region_name,
            "resources": [rule.arn], "detail": {}}
