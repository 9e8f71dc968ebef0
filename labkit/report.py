"""The lab report: one self-contained HTML page a student hands in and an instructor reads.

It holds the architecture diagram drawn from the live configuration, every step's checks, the network paths,
the "your turn" results, the orders and the daily report chart, the cost table, the lab time and the date.
Everything is inline (the pictures as data: URIs, the style in the page): no script, no external resource.
No secret reaches it: it shows what the checks and tables show, never a secret's value.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from labkit import (
    checks,
    compute,
    costs,
    database,
    diagram,
    display,
    paths,
    records,
    report_seal,
    steps,
    tasks,
    verify,
)
from labkit.config import RUN_DIR
from labkit.errors import LabkitError
from labkit.session import Lab
from labkit.snapshot import shared_reads

SEAL_TIMEOUT = 120  # the class service looks at the lab before it seals (seconds)
WORKERS = 6  # the sections' questions asked at once (the cloud answers them; this process mostly waits)

PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2433; margin: 2em auto;
       max-width: 1200px; padding: 0 1.5em; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #d5dbe5; padding-bottom: 0.2em; }
h3 { margin: 1.2em 0 0.3em 0; } .meta td { padding: 2px 12px 2px 0; } img { max-width: 100%; }
.summary { font-weight: 600; } .passed { color: #067647; } .failed { color: #b42318; } .note { color: #5b6478; }
"""


def _png(fig: Any) -> str:
    """A matplotlib figure as an inline <img> (a data: URI), closed afterwards."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _section(title: str, build: Callable[[], str]) -> str:
    """A section of the page; a part of the lab that cannot be read says why instead of ending the report."""
    try:
        body = build()
    except (LabkitError, OSError, BotoCoreError, ClientError) as exc:
        body = f'<p class="failed">Not available: {html.escape(str(exc).splitlines()[0])}</p>'
    return f"<h2>{html.escape(title)}</h2>\n{body}"


def _checks(frames: dict[int, Future[pd.DataFrame]]) -> str:
    parts = []
    for number, step in steps.STEPS.items():
        frame = frames[number].result()
        ok = bool(frame["passed"].all())
        parts.append(f'<h3 id="step-{number}">Step {number}: {html.escape(step.title)}</h3>'
                     f'<p class="summary {"passed" if ok else "failed"}">{checks.summary(number, frame)}</p>'
                     + display.to_html(frame))
    return "\n".join(parts)


def _tasks(frame: pd.DataFrame) -> str:
    done = int(frame["passed"].sum()) if len(frame) else 0  # "your turn": one task per step, checked in the cloud
    return (f'<p class="summary">{done}/{len(frame)} tasks done</p>'
            + display.to_html(frame.rename(columns={"passed": "done"})))  # ✓ or "not yet"


def _orders(orders: pd.DataFrame, days: pd.DataFrame) -> str:
    chart = _png(verify.days_chart(days)) if not days.empty else '<p class="note">No daily report yet (step 13).</p>'
    total = orders.attrs.get("total", len(orders))
    return (f"<p>{total} orders stored in RDS (the newest {len(orders)} shown).</p>" + display.to_html(orders)
            + "<h3>The daily reports</h3>" + display.to_html(days) + chart)


def _app(lab: Lab) -> str:
    """The order app's URL as the student's browser opens it, with the note when its port is remapped."""
    try:
        note = compute.app_note(lab)
        return compute.browser_url(lab) + (f" ({note})" if note else "")
    except (LabkitError, OSError, BotoCoreError, ClientError) as exc:
        return f"not available: {str(exc).splitlines()[0]}"


def build_report(lab: Lab, student: str | None = None) -> str:
    """The whole page as one HTML string, naming ``student`` (default: the Hub user, else the account), with
    :data:`labkit.report_seal.SLOT` where its record goes (:func:`write_report` fills it).

    The lab is read once (:func:`labkit.snapshot.shared_reads`: every section asks the same describes), and the
    sections' questions are asked side by side (most of the time is the cloud answering: SSM commands on the
    instance, SQL, HTTP); the figures are drawn here, in this thread, as matplotlib wants."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    try:
        lab_time = pd.Timestamp(lab.target.lab_time()).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
    except (LabkitError, OSError, ValueError) as exc:
        lab_time = f"unknown ({exc})"
    ran = records.solutions_ran(lab.config.home, lab.name)
    meta = {"student": records.student_name(student), "lab": lab.name, "target": lab.config.target,
            "region": lab.region, "lab time": lab_time, "order app": _app(lab), "report written": now,
            "reference solutions ran": f"steps {', '.join(map(str, ran))}" if ran else "no (by this lab's record)"}
    who = f"{meta['student']} ({lab.name})"
    rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(str(v))}</td></tr>" for k, v in meta.items())
    with shared_reads(lab), ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="report") as pool:
        step_frames = {number: pool.submit(checks.step_checks, lab, number) for number in steps.STEPS}
        reachability = pool.submit(paths.reachability_frame, lab)
        your_turn = pool.submit(tasks.tasks_frame, lab)
        orders, days = pool.submit(database.orders_frame, lab), pool.submit(verify.days_frame, lab)
        sections = [
            _section("Architecture (as built now)", lambda: _png(diagram.architecture_figure(lab))),
            _section("Every step's checks", lambda: _checks(step_frames)),
            _section("Network paths (reachability)", lambda: display.to_html(reachability.result())),
            _section("Your turn", lambda: _tasks(your_turn.result())),
            _section("Orders and the daily report", lambda: _orders(orders.result(), days.result())),
            _section("What it costs on AWS per hour", lambda: display.to_html(costs.cost_frame(lab.region))),
        ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Orders Lab report: {html.escape(who)}</title><style>{PAGE_CSS}</style></head><body>\n"
            f"<h1>Orders Lab report: {html.escape(who)}</h1>\n"
            "<p>The Automated Order Processing System, built step by step: VPC, RDS MySQL, a Flask app on EC2, "
            "two Lambdas, Secrets Manager, S3 and EventBridge.</p>\n"
            f'<table class="meta">{rows}</table>\n' + "\n".join(sections) + f"\n{report_seal.SLOT}\n</body></html>\n")


def report_folder() -> Path:
    """Where a report goes: beside the executed notebooks in a `labkit run` (``LABKIT_RUN_DIR``), else ``runs/``
    under the current folder; a student's own folder either way, never the shared notebooks of a classroom."""
    return Path(os.environ.get(RUN_DIR) or Path.cwd() / "runs")


def seal_report(lab: Lab, page: str, student: str | None = None) -> tuple[str, bool]:
    """The page with its record section: sealed by the class service on a classroom Hub (it writes its own
    record of the student there), else the lab's own record, marked as not sealed. (page, sealed)."""
    try:
        answer = records.service_request("api/sign", {"lab": lab.name, "page": page}, timeout=SEAL_TIMEOUT)
        return str(answer["page"]), True
    except (OSError, ValueError, KeyError):
        kept = records.lab_records(lab.config.home, lab.name).get("tasks", {})
        facts = {"student": records.student_name(student), "lab": lab.name, "tasks": kept,
                 "solutions_ran": records.solutions_ran(lab.config.home, lab.name)}
        return page.replace(report_seal.SLOT, report_seal.record_section(facts, sealed=False), 1), False


def write_report(lab: Lab, path: Path | str | None = None, student: str | None = None) -> Path:
    """Write the report (default ``report-<lab>-<time>.html`` in :func:`report_folder`); return its path."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = Path(path) if path else report_folder() / f"report-{lab.name}-{stamp}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    page, sealed = seal_report(lab, build_report(lab, student), student)
    target.write_text(page, encoding="utf-8")
    records.note_report(lab, target, sealed)
    return target


def report_link(page: Path) -> str:
    """The report's address relative to the notebook showing it (the executed copy in a `labkit run`)."""
    start = os.environ.get(RUN_DIR) or Path.cwd()
    return Path(os.path.relpath(page, start)).as_posix()

