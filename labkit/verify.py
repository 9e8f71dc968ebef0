"""The tutorial's Verification list, for real: orders over HTTP, the table, the report in S3, the logs."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from labkit import checks, compute, database, functions, iam, schedule, storage
from labkit.session import Lab

if TYPE_CHECKING:  # pragma: no cover - types only
    from matplotlib.figure import Figure


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


def _answer(result: Submission) -> str:
    """What the app answered, in words: the stored order's id, or each field's reason for a 422."""
    if result.body.get("order_id") and result.accepted:
        return f"stored as order {result.body['order_id']}"
    errors = result.body.get("errors")
    if isinstance(errors, dict):
        return "rejected: " + "; ".join(f"{field} {reason}" if not str(reason).startswith(field) else str(reason)
                                        for field, reason in errors.items())
    return json.dumps(result.body)


def submissions_frame(submissions: list[tuple[dict, Submission]]) -> pd.DataFrame:
    """Each submitted order with the app's HTTP status and its answer (the 422 reasons in full)."""
    rows = [{**{k: order.get(k) for k in ("customer_name", "product", "quantity", "amount")},
             "HTTP status": result.status, "answer": _answer(result)} for order, result in submissions]
    return pd.DataFrame(rows)


STEP_10_ORDER = "Ada"  # the customer of 10_lambda_order_validator's test invoke


def orders_explained(lab: Lab, submitted: list[tuple[dict, Submission]]) -> pd.DataFrame:
    """The stored orders, each with where it comes from: submitted above, the step-10 test, an earlier run."""
    orders = database.orders_frame(lab)
    now = {r.body.get("order_id") for _, r in submitted if r.accepted}
    names = {o.get("customer_name") for o, _ in submitted}

    def origin(row: pd.Series) -> str:
        if row["order_id"] in now:
            return "submitted above (1. Submit orders)"
        if row["customer_name"] == STEP_10_ORDER:
            return "step 10: the notebook's test of order-validator"
        if row["customer_name"] in names:
            return "an earlier run of this notebook"
        return "yours: placed through the form (step 8)"
    orders["where it comes from"] = orders.apply(origin, axis=1) if len(orders) else pd.Series(dtype=str)
    return orders


LAB_CUSTOMERS = {STEP_10_ORDER, "check", "Ada Lovelace", "Alan Turing", "Grace Hopper", "Katherine Johnson",
                 "Edsger Dijkstra", "Your turn"}  # the orders the notebooks, checks and tasks place themselves


@dataclass(frozen=True)
class FormOrders:
    """The orders a student placed through the app's form (any order the lab's own cells did not place)."""

    orders: pd.DataFrame

    def _message(self) -> tuple[str, str]:
        if self.orders.empty:
            return ("not yet", "no order from the form is stored. Until step 10 builds order-validator the app "
                               "answers *service unavailable* and stores nothing: submit again after step 10, then "
                               "run this cell again.")
        newest = self.orders.iloc[0]
        return ("stored", f"{len(self.orders)} order(s) from the form; the newest: {newest['customer_name']}, "
                          f"{newest['quantity']} x {newest['product']} for {newest['amount']:.2f}, "
                          f"order id {newest['order_id']}")

    def _repr_markdown_(self) -> str:
        state, text = self._message()
        return f"**Your order from the form: {state}** — {text}"

    def __repr__(self) -> str:
        state, text = self._message()
        return f"Your order from the form: {state}: {text.replace('*', '')}"


def form_orders(lab: Lab) -> FormOrders:
    """Read back from RDS the orders placed through the form (step 8's own order, once step 10 exists)."""
    orders = database.orders_frame(lab)
    return FormOrders(orders[~orders["customer_name"].isin(LAB_CUSTOMERS)].reset_index(drop=True))


def day_report(lab: Lab, firings: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The report of the day that just passed: the last scheduled run's CSV, read from S3."""
    done = firings.loc[(firings["status"] == "ok") & firings["key"].notna()]
    if done.empty:
        return "", pd.DataFrame(columns=["order_id", "customer_name", "product", "quantity", "amount", "created_at"])
    key = str(done["key"].iloc[-1])
    return key, storage.read_report(lab, key)


def day_window(firings: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[time - 24 h, time) of the last scheduled run: the day its report covers."""
    done = firings.loc[firings["status"] == "ok"]
    end = pd.Timestamp(done["time"].iloc[-1]) if not done.empty else pd.Timestamp.now(tz="UTC")
    end = end.tz_localize("UTC") if end.tzinfo is None else end
    return end - pd.Timedelta(hours=24), end


REPORT_COLUMNS = ["from", "to", "orders", "amount", "previous orders", "previous amount", "orders change",
                  "amount change"]


def days_frame(lab: Lab, prefix: str = "reports/") -> pd.DataFrame:
    """Every report with its window (``from``, ``to``: UTC) and its change against the 24 hours before it (the
    ``.change.json`` beside each CSV), oldest first. A run every 24 hours gives one row per day; a run every 12
    hours gives windows that overlap by half a day."""
    s3, bucket = lab.client("s3"), storage.bucket_name(lab)
    rows = []
    for key in storage.reports_frame(lab, prefix)["key"]:
        if key.endswith(".change.json"):
            change = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            rows.append({"from": _instant(change["window_start"]), "to": _instant(change["window_end"]),
                         "orders": change["orders"], "amount": float(change["amount"]),
                         "previous orders": change["previous_orders"],
                         "previous amount": float(change["previous_amount"]),
                         "orders change": change["orders_change"], "amount change": float(change["amount_change"])})
    return pd.DataFrame(rows, columns=REPORT_COLUMNS).sort_values("from", ignore_index=True)


def _instant(instant: str) -> str:
    return instant[:19].replace("T", " ")


def overlapping(days: pd.DataFrame) -> bool:
    """Whether any report's window starts before the previous one ends (a schedule shorter than 24 hours)."""
    starts, ends = pd.to_datetime(days["from"]), pd.to_datetime(days["to"])
    return bool((starts.iloc[1:].to_numpy() < ends.iloc[:-1].to_numpy()).any()) if len(days) > 1 else False


def days_chart(days: pd.DataFrame) -> Figure:
    """Each report's window on a time axis, labelled with its orders, and its amount beside it: windows that
    overlap (a 12-hour schedule) are seen to overlap instead of passing for separate days."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    start, end = pd.to_datetime(days["from"]), pd.to_datetime(days["to"])
    rows = list(range(len(days)))
    fig, (timeline, amounts) = plt.subplots(1, 2, figsize=(11, 1.4 + 0.42 * len(days)), sharey=True,
                                            gridspec_kw={"width_ratios": [3, 1.3]})
    timeline.barh(rows, end - start, left=start, height=0.55, color="#067647", alpha=0.75)
    for row, first, last, orders in zip(rows, start, end, days["orders"], strict=True):
        timeline.text(first + (last - first) / 2, row, f"{orders} order{'s' if orders != 1 else ''}", ha="center", va="center",
                      color="white", fontsize=8.5, fontweight="bold")
    labels = [f"{first:%d %b %H:%M}" for first in start]
    if len(set(labels)) < len(labels):  # two runs within a minute (two by hand): tell them apart by the second
        labels = [f"{first:%d %b %H:%M:%S}" for first in start]
    timeline.set_yticks(rows, labels)
    timeline.invert_yaxis()  # the oldest report on top
    timeline.xaxis.set_major_formatter(mdates.DateFormatter("%d %b\n%H:%M"))  # type: ignore[no-untyped-call]
    timeline.set_xlabel("UTC")
    timeline.set_ylabel("report (from)")
    title = "Each report's window: the 24 hours before its run"
    timeline.set_title(title + ("\nthe windows overlap: an order is in every report whose window holds it"
                                if overlapping(days) else ""), fontsize=10)
    amounts.barh(rows, days["amount"], height=0.55, color="#2155d6")
    for row, amount in zip(rows, days["amount"]):
        amounts.text(amount, row, f" {amount:,.2f}", va="center", ha="left", fontsize=8.5)
    amounts.set_xlabel("amount (USD)")
    amounts.set_title("Amount per report", fontsize=10)
    amounts.set_xlim(0, max(1.0, float(days["amount"].max())) * 1.35)
    fig.tight_layout()
    return fig


def verification_checks(lab: Lab, submitted: list[tuple[dict, Submission]], firings: pd.DataFrame,
                        report: pd.DataFrame) -> pd.DataFrame:
    """The tutorial's five Verification ticks as a check table."""
    accepted = [r.body.get("order_id") for _, r in submitted if r.accepted]
    rejected = [(o, r) for o, r in submitted if r.status == 422]
    orders = database.orders_frame(lab, limit=1000)
    start, end = day_window(firings)
    of_the_day = set(orders.loc[(orders["created_at"] >= start) & (orders["created_at"] < end), "order_id"])
    logs = functions.logs_frame(lab, iam.REPORT_FUNCTION, contains="REPORT RequestId", wait_seconds=120)
    rows = [
        ("orders submitted from the app are accepted", True, bool(accepted) and len(accepted) == len(submitted) - len(rejected)),
        ("accepted orders are in the RDS table", True, bool(accepted) and set(accepted) <= set(orders["order_id"])),
        ("invalid order (amount <= 0) rejected and not stored", True,
         bool(rejected) and all(r.body.get("errors", {}).get("amount") for _, r in rejected)),
        ("CSV report generated in S3 with the orders", True,
         not report.empty and set(accepted) <= set(report["order_id"])),
        ("the report holds exactly the orders of its day", True,
         not report.empty and set(report["order_id"]) == of_the_day),
        ("scheduled execution ran and is in CloudWatch Logs", True,
         (not firings.empty and (firings["status"] == "ok").all()) and not logs.empty),
    ]
    return pd.DataFrame([{"check": c, "expected": checks.shown(e), "actual": checks.shown(a), "passed": e == a}
                         for c, e, a in rows])


def schedule_once(lab: Lab) -> pd.DataFrame:
    """Let one day pass for the schedule (the lab clock locally; an invocation with the rule's event on AWS)."""
    return schedule.run_scheduled_report(lab, hours=24)
