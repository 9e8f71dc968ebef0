"""The class page and the report verification page, as HTML (no script: forms and links only)."""
from __future__ import annotations

import html
from typing import Any

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2433; margin: 1.2em;
       line-height: 1.35; font-size: 14px; }
h1 { font-size: 1.5em; margin: 0 0 .2em 0; } .note { color: #5b6478; }
.flash { background: #eef6ff; padding: .4em .8em; }
table.class { border-collapse: collapse; margin-top: .8em; } table.class th, table.class td {
  border: 1px solid #d5dbe5; padding: 3px 6px; text-align: center; white-space: nowrap; }
table.class th { background: #f3f5f9; position: sticky; top: 0; } td.name { text-align: left; font-weight: 600; }
.own { background: #d1fadf; color: #067647; } .solution { background: #fef0c7; color: #93370d; }
.checkpoint { background: #e0eaff; color: #3538cd; } .open { color: #98a2b3; } .full { color: #067647; }
.part { color: #b54708; } .down { color: #b42318; } .up { color: #067647; } .gone { text-decoration: line-through; }
form.inline { display: inline; margin: 0; } input[type=text] { width: 6em; font-size: 12px; }
td button { font-size: 12px; padding: 1px 4px; } .actions a, .actions form { margin-right: 1em; }
table.events td { text-align: left; white-space: normal; }
"""
MARK = {"own work": ("own", "✓"), "reference solution": ("solution", "S"), "handed out": ("checkpoint", "H"),
        "not yet": ("open", "·")}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _time(stamp: str | None, short: bool = False) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS`` (``short``: ``MM-DD HH:MM``)."""
    if not stamp:
        return "—"
    text = stamp.replace("T", " ")[:19]
    return _e(text[5:16] if short else text)


def _form(prefix: str, action: str, xsrf: str, fields: dict[str, str], label: str, extra: str = "") -> str:
    hidden = "".join(f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in fields.items())
    return (f'<form class="inline" method="post" action="{_e(prefix + action)}">'
            f'<input type="hidden" name="_xsrf" value="{_e(xsrf)}">{hidden}{extra}'
            f'<button type="submit">{_e(label)}</button></form>')


def _task_cell(number: str, title: str, task: dict[str, Any] | None) -> str:
    task = task or {"status": "not yet"}
    css, mark = MARK[task["status"]]
    tip = f"Task {number}: {title}\n{task['status']}"
    if task.get("first_passed"):
        tip += f", first passed {task['first_passed']}"
    if task.get("solution_ran"):
        tip += "\nthe reference solution ran"
    if task.get("detail"):
        tip += f"\nnow: {task['detail']}"
    gone = " gone" if task.get("first_passed") and not task.get("passed_now") else ""
    return f'<td class="{css}{gone}" title="{_e(tip)}">{mark}</td>'


def _step_cell(step: dict[str, Any] | None) -> str:
    if not step or not step.get("total"):
        best = f" (best {step['best_passed']}/{step['best_total']})" if step and step.get("best_total") else ""
        return f'<td class="open" title="no checks seen now{_e(best)}">—</td>'
    css = "full" if step["passed"] == step["total"] else "part"
    return f'<td class="{css}">{step["passed"]}/{step["total"]}</td>'


def page_html(table: dict[str, Any], prefix: str, xsrf: str, note: str = "") -> str:
    tasks, steps = sorted(table["tasks"], key=int), sorted(table["steps"], key=int)
    head = ("<tr><th>student</th><th>server</th><th>lab</th><th>last activity</th><th>looked at</th>"
            + "".join(f'<th title="{_e(table["steps"][n])}">S{int(n)}</th>' for n in steps)
            + "".join(f'<th title="{_e(table["tasks"][n])}">T{int(n)}</th>' for n in tasks)
            + '<th>own / passed</th><th>report</th><th title="records the service refused">refused</th>'
            '<th title="reset: an empty lab, or the checkpoint named in the box; update: pull the course\'s '
            'notebooks (their edits stay); look: look at the lab now">actions</th></tr>')
    rows = []
    for row in table["students"]:
        lab = row["lab"]
        actions = (  # reset (empty, or the checkpoint typed in), notebook update, a fresh look
_form(prefix, "reset", xsrf, {"student": row["student"]}, "reset",
                         '<input type="text" name="checkpoint" placeholder="checkpoint" '
                         'title="empty: an empty lab; a name: labkit cloud restore NAME">')
                   + " " + _form(prefix, "update-notebooks", xsrf, {"student": row["student"]}, "update")
                   + " " + _form(prefix, "look", xsrf, {"student": row["student"]}, "look"))
        report = row["report"]
        report_text = (f"sealed {_time(report['sealed_at'], True)}" if report["sealed_at"] else
                       f"unsealed {_time(report['lab_says'], True)}" if report["lab_says"] else "—")
        rows.append(
            f'<tr id="student-{_e(row["student"])}"><td class="name">{_e(row["student"])}</td>'
            f'<td class="{"up" if row["server"] == "running" else "down"}">{_e(row["server"])}</td>'
            f'<td class="{"up" if lab == "up" else "down"}" title="{_e(row["probe_error"])}">{_e(lab)}</td>'
            f'<td>{_time(row["last_activity"], True)}</td><td>{_time(row["probed_at"], True)}</td>'
            + "".join(_step_cell(row["steps"].get(n)) for n in steps)
            + "".join(_task_cell(n, table["tasks"][n], row["tasks"].get(n)) for n in tasks)
            + f'<td>{row["totals"]["tasks_own"]} / {row["totals"]["tasks_passed"]}</td><td>{report_text}</td>'
            f'<td class="{"down" if row["refused_claims"] else ""}">{row["refused_claims"]}</td>'
            f"<td>{actions}</td></tr>")
    events = "".join(f"<tr><td>{_time(e['at'])}</td><td>{_e(e['student'])}</td><td>{_e(e['kind'])}</td>"
                     f"<td>{_e(e['detail'])}</td></tr>" for e in reversed(table["events"]))
    flash = f'<p class="flash">{_e(note)}</p>' if note else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Orders Lab: the class</title><style>{CSS}</style></head><body>
<h1>Orders Lab: the class</h1>
<p class="note">{len(table["students"])} students, as of {_time(table["generated_at"])} UTC (every time on this
page is UTC). Reload the page to see
progress made since: a check a student runs is looked at at once; running labs not looked at in the last minute
are looked at when the page loads, and every few minutes.
S<i>n</i>: step <i>n</i>'s checks passed/total now. T<i>n</i>: "Your turn" task <i>n</i>:
<span class="own">&nbsp;✓&nbsp;</span> the student's own work, <span class="solution">&nbsp;S&nbsp;</span> the reference
solution, <span class="checkpoint">&nbsp;H&nbsp;</span> handed out in a checkpoint, <span class="open">·</span> not yet;
struck through: passed once, not in the lab now. Hover a cell for times and details.</p>
{flash}
<p class="actions"><a href="{_e(prefix)}grades.csv">grades.csv</a> <a href="{_e(prefix)}grades.json">grades.json</a>
<a href="{_e(prefix)}verify">Verify a report</a>
{_form(prefix, "look", xsrf, {}, "look at every running lab now")}
{_form(prefix, "update-notebooks", xsrf, {}, "send notebook updates to every student")}</p>
<table class="class">{head}{"".join(rows)}</table>
<h2>Recent events</h2>
<table class="class events"><tr><th>time (UTC)</th><th>student</th><th>what</th><th>detail</th></tr>{events}</table>
</body></html>
"""


def verify_html(prefix: str, xsrf: str, result: tuple[bool, str, dict[str, Any]] | None) -> str:
    answer = ""
    if result is not None:
        valid, finding, facts = result
        verdict = "Valid" if valid else "Not valid"
        answer = (f'<p class="{"up" if valid else "down"}"><b>{verdict}</b>: {_e(finding)}</p>'
                  + (f"<pre>{_e(facts)}</pre>" if facts else ""))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Verify a lab report</title><style>{CSS}</style></head><body>
<h1>Verify a lab report</h1>
<p class="note">A report written on this Hub carries the class service's seal. Upload the HTML file a student
handed in: the page says whether it is byte for byte as sealed, and shows the service's own record of the
student, which is what counts.</p>
<form method="post" enctype="multipart/form-data" action="{_e(prefix)}verify">
<input type="hidden" name="_xsrf" value="{_e(xsrf)}"><input type="file" name="report" accept=".html">
<button type="submit">Verify</button></form>{answer}
<p><a href="{_e(prefix)}">Back to the class</a></p></body></html>
"""
