"""The class table (one row per student) and the grades made from it: JSON, and CSV for an LMS gradebook.

The CSV follows Canvas's gradebook import format: the columns ``Student``, ``ID``, ``SIS User ID``,
``SIS Login ID``, ``Section``, then one column per assignment (a column Canvas does not know becomes a new
assignment, named by its header), and a ``Points Possible`` row under the header. Students are matched by
``SIS Login ID``: the Hub's user name, which is the account name the university gives them when the Hub uses the
university's login. ``Final Points`` and ``Final Score`` are columns Canvas treats as read-only and ignores on
import (they are in its own exports): totals for the reader, not new assignments.

Points: a task is 1 point when the student's own work passed it (the reference solution's pass, or a lab handed
out at a checkpoint, is 0); a step is 1 point times the share of its checks that passed (the best the service
saw: a lab reset later keeps what was earned).
"""
from __future__ import annotations

import csv
import io
from typing import Any

CATALOGUE_CODE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from labkit import names, tasks
print(json.dumps({"tasks": {str(s): t.title for s, t in tasks.TASKS.items()},
                  "steps": {str(s): title for s, (title, _) in names.STEP_NOTEBOOKS.items()}}))
"""
ID_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
STATUS = {"own": "own work", "solution": "reference solution", "checkpoint": "handed out"}


def task_status(t: dict[str, Any]) -> str:
    return STATUS.get(t.get("by") or "", "own work") if t.get("first_passed") else "not yet"


def student_row(user: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """One student: the Hub's view (server, activity) and the ledger's (lab, steps, tasks, report)."""
    server = (user.get("servers") or {}).get("")
    tasks = {str(s): {"status": task_status(t), "first_passed": t["first_passed"], "passed_now": bool(t["passed_now"]),
                      "solution_ran": bool(t["solution_ran"]), "detail": t["detail"]}
             for s, t in kept["tasks"].items()}
    steps = {str(s): v for s, v in kept["steps"].items()}
    own = sum(t["status"] == "own work" for t in tasks.values())
    step_points = round(sum(v["best_passed"] / v["best_total"] for v in steps.values() if v["best_total"]), 2)
    lab_report = kept.get("lab_report") or {}
    return {"student": user["name"], "server": "running" if server and server.get("ready") else "stopped",
            "last_activity": user.get("last_activity"), "lab": kept["cloud"] if kept["probed_at"] else "unknown",
            "probed_at": kept["probed_at"], "probe_error": kept["error"], "steps": steps, "tasks": tasks,
            "report": {"sealed_at": kept["report_signed_at"], "lab_says": lab_report.get("at")},
            "refused_claims": kept["refused"],
            "totals": {"tasks_own": own, "tasks_solution": sum(t["status"] == "reference solution"
                                                               for t in tasks.values()),
                       "tasks_passed": sum(t["status"] != "not yet" for t in tasks.values()),
                       "task_points": own, "step_points": step_points, "points": round(own + step_points, 2)}}


def class_table(catalogue: dict[str, Any], rows: list[dict[str, Any]], events: list[dict[str, str]]
                ) -> dict[str, Any]:
    from class_ledger import now

    possible = len(catalogue["tasks"]) + len(catalogue["steps"])
    for row in rows:
        row["totals"]["points_possible"] = possible
    return {"generated_at": now(), "tasks": catalogue["tasks"], "steps": catalogue["steps"], "students": rows,
            "events": events,
            "points": {"task": "1 for the student's own work, 0 for the reference solution or a handed-out lab",
                       "step": "1 x the share of the step's checks that passed (the best seen)"}}


def _column(kind: str, number: str, title: str) -> str:
    return f"Orders Lab {kind} {int(number):02d}: {title}"


def grades_csv(table: dict[str, Any], section: str = "") -> str:
    """The table as a Canvas gradebook CSV (see the module's docstring)."""
    tasks = sorted(table["tasks"], key=int)
    steps = sorted(table["steps"], key=int)
    header = ID_COLUMNS + [_column("task", n, table["tasks"][n]) for n in tasks] + \
        [_column("step", n, table["steps"][n]) for n in steps] + ["Final Points", "Final Score"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerow(["    Points Possible", "", "", "", ""] + ["1"] * (len(tasks) + len(steps))
                    + [str(len(tasks) + len(steps)), "100"])
    for row in table["students"]:
        task_points = [("1" if row["tasks"].get(n, {}).get("status") == "own work" else "0") for n in tasks]
        step_points = []
        for n in steps:
            step = row["steps"].get(n)
            step_points.append(f"{step['best_passed'] / step['best_total']:.2f}" if step and step["best_total"]
                               else "0")
        total, possible = row["totals"]["points"], row["totals"]["points_possible"] or 1
        writer.writerow([row["student"], "", "", row["student"], section] + task_points + step_points
                        + [f"{total:g}", f"{100 * total / possible:.1f}"])
    return out.getvalue()
