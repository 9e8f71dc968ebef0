"""EventBridge schedule expressions, ``rate(...)`` and ``cron(...)``, and the instants at which they fire.

One reading for the whole lab: the local cloud's scheduler fires rules at these instants
(:mod:`labkit.localcloud.scheduler`), and the checks judge a schedule by them, not by its spelling:
``rate(12 hours)``, ``rate(720 minutes)``, ``cron(0 0/12 * * ? *)``, ``cron(0 */12 * * ? *)`` and
``cron(0 0,12 * * ? *)`` all fire every 12 hours (:func:`fires_every`).

AWS's cron has six fields, ``minutes hours day-of-month month day-of-week year``, in UTC; day-of-week counts
1-7 from Sunday (or SUN-SAT) and one of the two day fields is ``?``. A rate's first firing is one period after
the rule is put (EventBridge's own anchor is not documented; the local cloud anchors it there).
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from croniter import croniter

UTC = dt.timezone.utc
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
CRON = re.compile(r"^cron\((.+)\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
YEARS = range(1970, 2200)  # the years AWS's cron accepts
HORIZON = dt.timedelta(days=366)  # a year: every month and weekday, and a leap day, come round
MAX_FIRINGS = 5000  # a schedule due more often is judged on its first 5,000 firings


def rate_period(expression: str) -> dt.timedelta | None:
    """The period of a ``rate(...)`` expression; None for anything else."""
    match = RATE.match(expression)
    return dt.timedelta(seconds=int(match[1]) * UNIT_SECONDS[match[2].rstrip("s")]) if match else None


def firings(expression: str, after: dt.datetime) -> Iterator[dt.datetime]:
    """Every instant strictly after ``after`` at which ``expression`` is due, in order, in UTC (a cron whose year
    field has passed ends). Raises ValueError for text that is not a schedule expression."""
    period = rate_period(expression)
    if period is not None:
        instant = after
        while True:
            instant += period
            yield instant
    cron = CRON.match(expression)
    if not cron:
        raise ValueError(f"not a schedule expression: {expression!r} (rate(value unit) or cron(six fields))")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ValueError(f"AWS cron needs six fields (minutes hours day-of-month month day-of-week year): {expression}")
    minute, hour, dom, month, dow, year = fields
    dow = re.sub(r"(?<![#\d])(\d)", lambda m: str(int(m.group(1)) - 1), dow)  # AWS 1-7 = SUN-SAT; cron 0-6
    spec = " ".join(f.replace("?", "*") for f in (minute, hour, dom, month, dow))
    years = _years(year, expression)
    try:  # croniter on naive UTC times: AWS's cron is in UTC, and croniter is twice as fast without zones
        times = croniter(spec, after.astimezone(UTC).replace(tzinfo=None))
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{expression} is not a valid cron expression: {exc}") from None
    while True:
        candidate = times.get_next(dt.datetime)
        if candidate.year not in years:
            later = [y for y in years if y > candidate.year]
            if not later:
                return
            times = croniter(spec, dt.datetime(later[0], 1, 1) - dt.timedelta(microseconds=1))
            continue
        yield candidate.replace(tzinfo=UTC)


def _years(field: str, expression: str) -> list[int]:
    """The years the year field allows: ``*``/``?``, ``2026``, ``2026-2028``, ``2026,2030``, ``2026/2``, ``*/2``."""
    allowed: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        try:
            if span in ("*", "?"):
                low, high = YEARS.start, YEARS.stop - 1
            else:
                first, _, last = span.partition("-")
                low = int(first)
                high = int(last) if last else (YEARS.stop - 1 if step else low)
            allowed.update(range(low, high + 1, int(step) if step else 1))
        except ValueError:
            raise ValueError(f"{expression}: the year field {field!r} is not a year, a range or a list") from None
    return sorted(y for y in allowed if y in YEARS)


def next_after(expression: str, after: dt.datetime) -> dt.datetime:
    """The first instant strictly after ``after`` at which ``expression`` (AWS syntax) is due."""
    for instant in firings(expression, after):
        return instant
    raise ValueError(f"{expression} is never due again")


def _horizon(expression: str) -> dt.timedelta:
    """How far ahead to look to see all a schedule does: two days for a cron whose day, month and year fields are
    all wildcards (it repeats every day), else a year."""
    cron = CRON.match(expression)
    fields = cron.group(1).split() if cron else []
    if len(fields) == 6 and all(field in ("*", "?") for field in fields[2:]):
        return dt.timedelta(days=2)
    return HORIZON


def _hours(delta: dt.timedelta) -> str:
    """A span as people say it: 30 min, 12 h, 60 h, 27.3 days."""
    hours = delta.total_seconds() / 3600
    if hours >= 72:
        return f"{hours / 24:.3g} days"
    return f"{hours:.4g} h" if hours >= 1 else f"{delta.total_seconds() / 60:.4g} min"


def fires_every(expression: str, period: dt.timedelta, after: dt.datetime) -> tuple[bool, str]:
    """Whether ``expression`` fires every ``period`` for the coming year (each firing ``period`` after the one
    before), with what it does instead when it does not: its spacing, or where it breaks the rhythm."""
    try:
        rate = rate_period(expression)
        if rate is not None:
            return rate == period, f"{expression} fires every {_hours(rate)}"
        previous, horizon = None, _horizon(expression)
        for count, instant in enumerate(firings(expression, after)):
            if previous is None and instant - after > period:
                return False, (f"{expression} first fires at {instant:%Y-%m-%d %H:%M} UTC, "
                               f"{_hours(instant - after)} from now, not within {_hours(period)}")
            if previous is not None and instant - previous != period:
                if count == 1:
                    return False, (f"{expression} fires {_hours(instant - previous)} apart "
                                   f"({previous:%Y-%m-%d %H:%M} and {instant:%H:%M} UTC), not every {_hours(period)}")
                return False, (f"{expression} fires every {_hours(period)} until {previous:%Y-%m-%d %H:%M} UTC, "
                               f"then {_hours(instant - previous)} later ({instant:%Y-%m-%d %H:%M})")
            if instant - after > horizon or count >= MAX_FIRINGS:
                return True, f"{expression} fires every {_hours(period)}"
            previous = instant
        if previous is None:
            return False, f"{expression} never fires again (its year field has passed)"
        return False, f"{expression} fires for the last time at {previous:%Y-%m-%d %H:%M} UTC"
    except ValueError as exc:
        return False, str(exc)


def longest_gap(expression: str, after: dt.datetime) -> dt.timedelta | None:
    """The longest time between two firings in the coming year (from ``after`` to the first firing included);
    None when it never fires again, or the text is not a schedule expression."""
    try:
        rate = rate_period(expression)
        if rate is not None:
            return rate
        longest, previous, horizon = None, after, _horizon(expression)
        for count, instant in enumerate(firings(expression, after)):
            longest = max(longest or instant - previous, instant - previous)
            if instant - after > horizon or count >= MAX_FIRINGS:
                return longest
            previous = instant
        return None
    except ValueError:
        return None
