"""Pure parts of the daily delta report: the window, the S3 keys, the CSV rows and the day-over-day change."""
from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import IO, Any

HEADER = ("order_id", "customer_name", "product", "quantity", "amount", "created_at")
UTC = dt.timezone.utc


class WindowError(ValueError):
    """The event does not say which window to report."""


def _parse_instant(text: Any, label: str) -> dt.datetime:
    if not isinstance(text, str):
        raise WindowError(f"{label} must be an ISO-8601 time such as 2026-01-31T00:00:00Z")
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise WindowError(f"{label} {text!r} is not an ISO-8601 time") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def report_window(event: Any) -> tuple[dt.datetime, dt.datetime]:
    """[time - 24 h, time) for an EventBridge scheduled event; [start, end) for {"start", "end"}."""
    if not isinstance(event, dict):
        raise WindowError("the event must be a JSON object")
    if event.get("detail-type") == "Scheduled Event" or (event.get("source") == "aws.events" and "time" in event):
        end = _parse_instant(event.get("time"), "time")
        return end - dt.timedelta(hours=24), end
    if "start" in event or "end" in event:
        start, end = _parse_instant(event.get("start"), "start"), _parse_instant(event.get("end"), "end")
        if start >= end:
            raise WindowError("start must be before end")
        return start, end
    raise WindowError('the event must be an EventBridge scheduled event or {"start": ..., "end": ...}')


def report_key(start: dt.datetime, prefix: str = "reports/") -> str:
    return f"{prefix}dt={start:%Y-%m-%d}/orders-delta-{start:%Y%m%dT%H%M%SZ}.csv"


def change_key(start: dt.datetime, prefix: str = "reports/") -> str:
    """The day-over-day summary, beside the CSV of the same window."""
    return report_key(start, prefix).removesuffix(".csv") + ".change.json"


def previous_window(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The window of the same length just before [start, end): yesterday, for a daily run."""
    return start - (end - start), start


def day_change(window: tuple[dt.datetime, dt.datetime], orders: int, amount: Decimal,
               previous_orders: int, previous_amount: Decimal) -> dict[str, Any]:
    """The window's orders and amount against the previous window's, and the differences."""
    start, end = window
    before, _ = previous_window(start, end)
    return {"window_start": _iso(start), "window_end": _iso(end), "orders": orders, "amount": f"{amount:.2f}",
            "previous_window_start": _iso(before), "previous_orders": previous_orders,
            "previous_amount": f"{previous_amount:.2f}", "orders_change": orders - previous_orders,
            "amount_change": f"{amount - previous_amount:.2f}"}


def _iso(instant: dt.datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_row(row: tuple[Any, ...]) -> tuple[str, str, str, int, str, str]:
    order_id, customer, product, quantity, amount, created_at = row
    stamp = created_at.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return order_id, customer, product, int(quantity), f"{Decimal(amount):.2f}", stamp


def write_csv(rows: Iterable[tuple[Any, ...]], out: IO[str]) -> tuple[int, Decimal]:
    """Write the header and ``rows`` (database tuples); return the row count and the total amount."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    count, total = 0, Decimal("0.00")
    for row in rows:
        formatted = format_row(row)
        writer.writerow(formatted)
        count += 1
        total += Decimal(formatted[4])
    return count, total
