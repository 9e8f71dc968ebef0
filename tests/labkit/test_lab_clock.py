"""The whole lab on one clock: orders submitted in a day are exactly that day's scheduled report, day after day."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from labkit import verify

ROOT = Path(__file__).resolve().parents[2]
ORDERS = [
    [{"customer_name": "Ada", "product": "Notebook", "quantity": 3, "amount": "12.50"},
     {"customer_name": "Alan", "product": "Pencil", "quantity": 10, "amount": "4.20"}],
    [{"customer_name": "Grace", "product": "Compiler", "quantity": 1, "amount": "99.95"}],
    [{"customer_name": "Edsger", "product": "Semaphore", "quantity": 2, "amount": "7.00"},
     {"customer_name": "Barbara", "product": "Abstraction", "quantity": 1, "amount": "15.00"},
     {"customer_name": "Donald", "product": "Volume 4B", "quantity": 1, "amount": "80.00"}],
]


def test_a_daily_rule_over_three_advanced_days_reports_each_days_orders_exactly(provisioned):
    lab = provisioned.lab
    verify.schedule_once(lab)  # close the day that holds whatever other tests submitted
    reports, previous_amount = [], None
    for day in ORDERS:
        submitted = [(order, verify.submit_order(lab, order)) for order in day]
        assert all(result.accepted for _, result in submitted), verify.submissions_frame(submitted)
        firings = verify.schedule_once(lab)  # what the notebook's report cells do, with no fallback
        assert list(firings["status"]) == ["ok"], firings
        key, report = verify.day_report(lab, firings)
        accepted = {result.body["order_id"] for _, result in submitted}
        assert set(report["order_id"]) == accepted, f"{key} holds {sorted(report['order_id'])}"
        checks = verify.verification_checks(lab, submitted, firings, report)
        assert checks.loc[checks["check"] != "invalid order (amount <= 0) rejected and not stored", "passed"].all(), \
            checks.to_string()
        amount = sum(Decimal(order["amount"]) for order in day)
        days = verify.days_frame(lab)
        today = days.iloc[-1]
        assert (today["orders"], Decimal(str(today["amount"]))) == (len(day), amount)
        if previous_amount is not None:
            assert Decimal(str(today["amount change"])) == amount - previous_amount
        previous_amount = amount
        reports.append(set(report["order_id"]))
    everything = [order for report in reports for order in report]
    assert len(everything) == len(set(everything)) == sum(len(day) for day in ORDERS), "no order twice, none missing"


def test_the_database_and_the_functions_live_on_the_lab_clock(provisioned):
    lab = provisioned.lab
    lab.target.fire_schedule("", 30, invoke=None)  # move the lab clock 30 hours ahead
    lab_now = dt.datetime.fromisoformat(lab.target.lab_time())
    assert lab_now - dt.datetime.now(dt.timezone.utc) >= dt.timedelta(hours=30)
    with provisioned.db_connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP(6)")
        (db_now,) = cur.fetchone()
    assert abs(db_now.replace(tzinfo=dt.timezone.utc) - lab_now) < dt.timedelta(seconds=30)


def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def test_the_verification_notebook_holds_its_orders_on_every_run(provisioned, monkeypatch):
    """The notebook's own cells, run twice in a row: both times the scheduled report holds the new orders."""
    lab = provisioned.lab
    monkeypatch.setenv("LABKIT_HOME", str(provisioned.home))
    monkeypatch.setenv("LABKIT_APP_PORT", str(lab.config.app_port))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    cells = _code_cells(ROOT / "notebooks" / "14_verification.ipynb")
    assert not any("report_with_orders" in cell or "manual" in cell for cell in cells), "no by-hand fallback"
    for _run in range(2):
        namespace: dict = {}
        exec(cells[0], namespace)  # the parameters cell
        namespace.update(target="local", lab_name=lab.name, region=lab.region)
        for cell in cells[1:]:
            exec(compile(cell, "14_verification", "exec"), namespace)  # the last cell raises unless all passed
        accepted = {r.body["order_id"] for _, r in namespace["submitted"] if r.accepted}
        assert set(namespace["report"]["order_id"]) == accepted
        assert namespace["result"]["passed"].all(), namespace["result"].to_string()
