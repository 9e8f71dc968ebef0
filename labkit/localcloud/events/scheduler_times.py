"""When an EventBridge Scheduler schedule is due: ``at()``, ``rate()`` and ``cron()`` in the schedule's time zone,
between its StartDate and EndDate (EventBridge Scheduler User Guide, "Schedule types").

* ``at(yyyy-mm-ddThh:mm:ss)`` is one instant, read in ``ScheduleExpressionTimezone`` (UTC by default).
* ``rate(N unit)`` starts at StartDate, or when the schedule was created without one ("your schedule starts
  invoking its target immediately"), then every N units of elapsed time (a day is 24 hours, also across a change
  of daylight saving time).
* ``cron(...)`` is AWS's six-field cron (:mod:`labkit.schedule_expressions`) read on the wall clock of the time zone:
  an instant the spring change skips is not run, an instant the autumn change repeats is run once (the first).

Every instant is returned in UTC, timezone-aware.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from labkit.schedule_expressions import firings, next_after, rate_period

UTC = dt.timezone.utc
AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
TINY = dt.timedelta(microseconds=1)


def zone(name: str | None) -> dt.tzinfo:
    """The IANA time zone ``name`` (UTC when None); ValueError for a name that is not one."""
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"Invalid ScheduleExpressionTimezone {name}") from None


def as_instant(value: Any) -> dt.datetime | None:
    """A StartDate/EndDate as moto keeps it (epoch seconds from the JSON body, or ISO text), in UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return dt.datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def check(expression: str, timezone: str | None) -> None:
    """ValueError unless ``expression`` is an at/rate/cron expression the scheduler can read, in a real zone."""
    zone(timezone)
    if AT.match(expression):
        dt.datetime.fromisoformat(AT.match(expression)[1])  # type: ignore[index]
        return
    next(firings(expression, dt.datetime.now(UTC)), None)  # (a cron whose years are over is valid, never due)


def _at(expression: str, tz: dt.tzinfo) -> dt.datetime | None:
    found = AT.match(expression)
    if not found:
        return None
    return dt.datetime.fromisoformat(found[1]).replace(tzinfo=tz).astimezone(UTC)


def _exists(local: dt.datetime, tz: dt.tzinfo) -> bool:
    """False for a wall-clock time the spring change of ``tz`` skips."""
    there = local.replace(tzinfo=tz)
    return there.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


def next_instant(expression: str, timezone: str | None, anchor: dt.datetime, after: dt.datetime) -> dt.datetime | None:
    """The first instant strictly after ``after`` at which the schedule is due (``anchor``: where a rate counts
    from, its first instant); None when it is never due again (a passed ``at()``, a cron whose years are over)."""
    tz = zone(timezone)
    once = _at(expression, tz)
    if once is not None or AT.match(expression):
        return once if once is not None and once > after else None
    period = rate_period(expression)
    if period is not None:
        if after < anchor:
            return anchor
        return anchor + (((after - anchor) // period) + 1) * period
    if tz is UTC:
        try:
            return next_after(expression, after)
        except ValueError:
            return None
    local = after.astimezone(tz).replace(tzinfo=None)
    for _ in range(10000):
        try:
            candidate = next_after(expression, local.replace(tzinfo=UTC)).replace(tzinfo=None)
        except ValueError:
            return None
        instant = candidate.replace(tzinfo=tz).astimezone(UTC)  # fold=0: a repeated hour's first pass
        if _exists(candidate, tz) and instant > after:
            return instant
        local = candidate
    return None


def first_instant(expression: str, timezone: str | None, start: dt.datetime) -> dt.datetime | None:
    """The first instant at or after ``start`` (a rate's is ``start`` itself)."""
    return next_instant(expression, timezone, start, start - TINY)
