"""The daily report's window, key and CSV, without a database."""
from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from report import WindowError, change_key, day_change, previous_window, report_key, report_window, write_csv

UTC = dt.timezone.utc


def test_scheduled_event_window_is_the_24_hours_before_its_time():
    start, end = report_window({"detail-type": "Scheduled Event", "source": "aws.events",
                                "time": "2026-03-02T00:00:00Z"})
    assert (start, end) == (dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 3, 2, tzinfo=UTC))


def test_manual_window_and_naive_times_are_utc():
    start, end = report_window({"start": "2026-01-01T00:00:00", "end": "2026-01-01T06:30:00+02:00"})
    assert start == dt.datetime(2026, 1, 1, tzinfo=UTC) and end == dt.datetime(2026, 1, 1, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize("event", [{}, {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
                                   {"start": "yesterday", "end": "2026-01-01T00:00:00Z"}, "text",
                                   {"detail-type": "Scheduled Event", "time": 5}])
def test_bad_events_say_what_is_wrong(event):
    with pytest.raises(WindowError):
        report_window(event)


def test_key_is_derived_from_the_window_start():
    start = dt.datetime(2026, 3, 1, 6, 0, 0, tzinfo=UTC)
    assert report_key(start) == "reports/dt=2026-03-01/orders-delta-20260301T060000Z.csv"
    assert report_key(start, "custom/") == "custom/dt=2026-03-01/orders-delta-20260301T060000Z.csv"


def test_csv_is_exact_and_totals_are_decimal():
    rows = [("a" * 36, "Ada, \"the\" first", "Pen", 2, Decimal("0.10"), dt.datetime(2026, 3, 1, 1, 2, 3, 400)),
            ("b" * 36, "Bo", "Ink", 1, Decimal("0.20"), dt.datetime(2026, 3, 1, 5))]
    out = io.StringIO()
    assert write_csv(rows, out) == (2, Decimal("0.30"))
    assert out.getvalue() == (
        "order_id,customer_name,product,quantity,amount,created_at\n"
        f"{'a' * 36},\"Ada, \"\"the\"\" first\",Pen,2,0.10,2026-03-01T01:02:03.000400Z\n"
        f"{'b' * 36},Bo,Ink,1,0.20,2026-03-01T05:00:00.000000Z\n")


def test_empty_window_is_header_only():
    out = io.StringIO()
    assert write_csv([], out) == (0, Decimal("0.00"))
    assert out.getvalue() == "order_id,customer_name,product,quantity,amount,created_at\n"


def test_day_change_compares_the_window_with_the_one_before():
    start, end = dt.datetime(2026, 3, 2, tzinfo=UTC), dt.datetime(2026, 3, 3, tzinfo=UTC)
    assert previous_window(start, end) == (dt.datetime(2026, 3, 1, tzinfo=UTC), start)
    change = day_change((start, end), 3, Decimal("30.50"), 5, Decimal("40.00"))
    assert change == {"window_start": "2026-03-02T00:00:00Z", "window_end": "2026-03-03T00:00:00Z", "orders": 3,
                      "amount": "30.50", "previous_window_start": "2026-03-01T00:00:00Z", "previous_orders": 5,
                      "previous_amount": "40.00", "orders_change": -2, "amount_change": "-9.50"}
    assert change_key(start) == "reports/dt=2026-03-02/orders-delta-20260302T000000Z.change.json"
