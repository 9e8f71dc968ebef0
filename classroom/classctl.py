"""The instructor's commands on the Hub's machine (as root, beside the class page): the same work, from a shell.

    sudo .venv/bin/python classroom/classctl.py grades [--csv]           # the class's grades (JSON, or CSV)
    sudo .venv/bin/python classroom/classctl.py verify REPORT.html       # is this lab report as sealed?
    sudo .venv/bin/python classroom/classctl.py reset STUDENT [--checkpoint NAME]
    sudo .venv/bin/python classroom/classctl.py publish [-m "what changed"]   # the install's notebooks -> course
    sudo .venv/bin/python classroom/classctl.py update [STUDENT ...]    # pull the course into their notebooks

It reads and writes the class service's ledger and key in ``$ORDERS_HUB_STATE/class`` (default
``/srv/orders-hub/class``), and acts in a student's account as the service does (class_probe.Hands). The grades
here come from the ledger alone (the class page adds the Hub's server and activity columns).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("ORDERS_LAB_ROOT") or HERE.parent)
sys.path[:0] = [str(HERE), str(ROOT)]
from class_grades import class_table, grades_csv, student_row  # noqa: E402
from class_ledger import Ledger  # noqa: E402
from class_probe import Hands  # noqa: E402
from course_repo import publish  # noqa: E402

from labkit import report_seal  # noqa: E402

STATE = Path(os.environ.get("ORDERS_HUB_STATE", "/srv/orders-hub")) / "class"
COURSE = Path(os.environ.get("ORDERS_HUB_COURSE", "/srv/orders-course.git"))
PYTHON = Path(os.environ.get("ORDERS_LAB_PYTHON") or ROOT / ".venv" / "bin" / "python")


def _catalogue() -> dict:
    from labkit import names, tasks

    return {"tasks": {str(s): t.title for s, t in tasks.TASKS.items()},
            "steps": {str(s): title for s, (title, _) in names.STEP_NOTEBOOKS.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="classctl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    grades = sub.add_parser("grades", help="the class's grades from the ledger")
    grades.add_argument("--csv", action="store_true", help="Canvas's gradebook CSV instead of JSON")
    sub.add_parser("verify", help="verify a lab report's seal").add_argument("report")
    reset = sub.add_parser("reset", help="reset a student's lab (their notebooks stay)")
    reset.add_argument("student")
    reset.add_argument("--checkpoint", default=None, help="restore this checkpoint (labkit cloud restore NAME)")
    pub = sub.add_parser("publish", help="publish the install's notebooks to the course repository")
    pub.add_argument("-m", "--message", default="Notebooks updated by the instructor")
    update = sub.add_parser("update", help="pull the course into students' notebooks (their edits stay)")
    update.add_argument("students", nargs="*", help="default: every student the class service has seen")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("classctl: run as root (it reads the class service's key and acts as the students)", file=sys.stderr)
        return 2
    if args.verb == "publish":
        commit = publish(ROOT / "notebooks", COURSE, args.message)
        print(f"published {commit}" if commit else "the course already has these notebooks")
        return 0
    if args.verb == "verify":
        valid, finding, facts = report_seal.verify(Path(args.report).read_text(errors="replace"),
                                                   (STATE / "seal.key").read_bytes())
        print(("VALID: " if valid else "NOT VALID: ") + finding)
        if facts:
            print(json.dumps(facts, indent=1))
        return 0 if valid else 1
    ledger = Ledger(STATE / "ledger.sqlite")
    known = sorted({s for (s,) in ledger._run("SELECT student FROM probes")})
    if args.verb == "grades":
        table = class_table(_catalogue(), [student_row({"name": s}, ledger.student(s)) for s in known],
                            ledger.events()[-30:])
        print(grades_csv(table, os.environ.get("ORDERS_CLASS_SECTION", "")) if args.csv
              else json.dumps(table, indent=1))
        return 0
    hands = Hands(STATE, ROOT, PYTHON)
    if args.verb == "reset":
        ok, output = asyncio.run(hands.reset(args.student, args.checkpoint))
        what = f"to checkpoint {args.checkpoint}" if args.checkpoint else "to empty"
        if ok:
            ledger.reset(args.student, what, "classctl")
        print(output)
        return 0 if ok else 1
    for student in args.students or known:
        folder = str(Path(os.path.expanduser(f"~{student}")) / "orders-lab" / "notebooks")
        code, out, err = asyncio.run(hands.run(student, "labkit.course", ["pull", str(COURSE), folder]))
        print(f"{student}: {(out or err).strip()[-400:]}")
        ledger.event(student, "notebooks updated", f"by classctl: {(out or err).strip()[-250:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
