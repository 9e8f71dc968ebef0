"""The tutorial's Verification list, for real: orders over HTTP, the table, the report in S3, the logs."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labkit import compute, database, functions, iam, schedule, storage
from labkit.session import Lab


@dataclass(frozen=True)
class Submission:
    status: int
    body: dict

    @property
    def accepted(self) -> bool:
        return self.status in (200, 201)


def submit_order(lab: Lab, order: dict[str, Any]) -> Submission:
    """POST an order to the running app's JSON API, as a browser or a client would."""
    request = urllib.request.Request(compute.app_url(lab) + "api/orders", data=json.dumps(order).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Submission(response.status, json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        return Submission(exc.code, json.loads(exc.read() or b"{}"))


def submissions_frame(submissions: list[tuple[dict, Submission]]) -> pd.DataFrame:
    rows = [{**{k: order.get(k) for k in ("customer_name", "product", "quantity", "amount")},
             "HTTP status": result.status,
             "result": result.body.get("order_id") or json.dumps(result.body.get("errors", result.body))}
            for order, result in submissions]
    return pd.DataFrame(rows)


def report_with_orders(lab: Lab, firings: pd.DataFrame,
                       submitted: list[tuple[dict, Submission]]) -> tuple[str, pd.DataFrame, str]:
    """The report holding the accepted orders: the scheduled one, as a rule.

    Orders carry the real time, while the local lab clock only moves forward. Once it has been advanced
    (on a re-run of this notebook), the schedule reports days the new orders are not in. Then the same
    function is run by hand for the orders' own window, and the third value says so.
    """
    wanted = {r.body.get("order_id") for _, r in submitted if r.accepted}
    for key in firings.loc[firings["status"] == "ok", "key"].dropna():
        frame = storage.read_report(lab, key)
        if wanted <= set(frame["order_id"]):
            return key, frame, "the scheduled run"
    orders = database.orders_frame(lab, limit=1000)
    times = orders.loc[orders["order_id"].isin(wanted), "created_at"]
    if times.empty:
        return "", pd.DataFrame(), "no accepted orders to report"
    event = {"start": times.min().floor("s").strftime("%Y-%m-%dT%H:%M:%SZ"),
             "end": (times.max().floor("s") + pd.Timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    result = functions.invoke(lab, iam.REPORT_FUNCTION, event)
    key = (result.payload or {}).get("key", "") if isinstance(result.payload, dict) else ""
    return key, storage.read_report(lab, key) if key else pd.DataFrame(), (
        "a manual run for the orders' window (the lab clock had already passed them)")


def amounts_chart(report: pd.DataFrame):
    """A bar chart of the report's amounts per product, and its order count per product."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    by_product = report.groupby("product").agg(orders=("order_id", "count"), amount=("amount", "sum"))
    by_product["amount"].plot.bar(ax=left, color="#2155d6", title="Amount per product (USD)")
    by_product["orders"].plot.bar(ax=right, color="#067647", title="Orders per product")
    for axis in (left, right):
        axis.set_xlabel("")
        axis.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    return fig


def verification_checks(lab: Lab, submitted: list[tuple[dict, Submission]], firings: pd.DataFrame,
                        report: pd.DataFrame) -> pd.DataFrame:
    """The tutorial's five Verification ticks as a check table."""
    accepted = [r.body.get("order_id") for _, r in submitted if r.accepted]
    rejected = [(o, r) for o, r in submitted if r.status == 422]
    stored = set(database.orders_frame(lab, limit=1000)["order_id"])
    logs = functions.logs_frame(lab, iam.REPORT_FUNCTION, contains="REPORT RequestId", wait_seconds=120)
    rows = [
        ("orders submitted from the app are accepted", True, bool(accepted) and len(accepted) == len(submitted) - len(rejected)),
        ("accepted orders are in the RDS table", True, bool(accepted) and set(accepted) <= stored),
        ("invalid order (amount <= 0) rejected and not stored", True,
         bool(rejected) and all(r.body.get("errors", {}).get("amount") for _, r in rejected)),
        ("CSV report generated in S3 with the orders", True,
         not report.empty and set(accepted) <= set(report["order_id"])),
        ("scheduled execution ran and is in CloudWatch Logs", True,
         (not firings.empty and (firings["status"] == "ok").all()) and not logs.empty),
    ]
    return pd.DataFrame([{"check": c, "expected": str(e), "actual": str(a), "passed": e == a} for c, e, a in rows])


def schedule_once(lab: Lab) -> pd.DataFrame:
    """Let one day pass for the schedule (the lab clock locally; an invocation with the rule's event on AWS)."""
    return schedule.run_scheduled_report(lab, hours=24)
