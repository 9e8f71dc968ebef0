"""The reports chart draws each report's window where it lies in time: 12-hourly reports are seen to overlap."""
from __future__ import annotations

import matplotlib
import matplotlib.dates as mdates
import pandas as pd

matplotlib.use("Agg")

from labkit import verify


def _days(starts: list[str], hours: int = 24) -> pd.DataFrame:
    rows = [{"from": s, "to": (pd.Timestamp(s) + pd.Timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S"),
             "orders": n + 1, "amount": 10.0 * (n + 1), "previous orders": 0, "previous amount": 0.0,
             "orders change": 0, "amount change": 0.0} for n, s in enumerate(starts)]
    return pd.DataFrame(rows, columns=verify.REPORT_COLUMNS)


def _windows(figure) -> list[tuple[float, float]]:
    bars = figure.axes[0].patches
    return [(bar.get_x(), bar.get_x() + bar.get_width()) for bar in bars]


def test_twelve_hourly_reports_are_drawn_as_the_overlapping_windows_they_are():
    days = _days(["2026-12-04 03:32", "2026-12-04 15:32"])
    assert verify.overlapping(days)
    figure = verify.days_chart(days)
    (a0, a1), (b0, b1) = _windows(figure)
    assert b0 < a1, "the second window starts inside the first"
    assert (a1 - a0, b1 - b0) == (1.0, 1.0), "each bar is its 24-hour window"
    assert b0 - a0 == 0.5
    assert a0 == mdates.date2num(pd.Timestamp("2026-12-04 03:32"))
    assert "overlap" in figure.axes[0].get_title()


def test_daily_reports_are_side_by_side_without_a_note():
    days = _days(["2026-12-03 00:00", "2026-12-04 00:00", "2026-12-05 00:00"])
    assert not verify.overlapping(days)
    figure = verify.days_chart(days)
    windows = _windows(figure)
    assert all(later[0] == earlier[1] for earlier, later in zip(windows, windows[1:]))
    assert "overlap" not in figure.axes[0].get_title()
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["03 Dec 00:00", "04 Dec 00:00", "05 Dec 00:00"]


def test_two_reports_within_a_minute_are_told_apart_by_the_second():
    days = _days(["2026-12-03 18:30:41", "2026-12-03 18:30:58"])
    labels = [t.get_text() for t in verify.days_chart(days).axes[0].get_yticklabels()]
    assert labels == ["03 Dec 18:30:41", "03 Dec 18:30:58"]
