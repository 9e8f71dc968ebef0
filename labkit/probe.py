"""What the class service asks of one student's lab: run as that student, it prints one JSON document.

    python -I -m labkit.probe [--lab NAME] [--task N ...] [--steps]

The class service (classroom/class_probe.py) starts it as the student's own account, with a clean environment
and Python's isolated mode (``-I``: no user site-packages, no ``PYTHON*`` variables, nothing from the current
folder), so nothing a student put in their home runs in it. It reads; it never starts a stopped lab (a lab
that is down is reported down), never writes the lab's task records (``LABKIT_RECORDS=off``), and it answers:

* ``cloud``: ``up`` or ``down``; ``tasks``: each task's check as the cloud answers now (passed, detail);
* ``steps`` (with ``--steps``): each step's checks, passed and total;
* ``records``: the lab's own task records (:mod:`labkit.records`), which the service treats as claims.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
from typing import Any

PR_SET_DUMPABLE = 4


def _not_dumpable() -> None:
    """No other process of the student's may attach to this one (ptrace) or read its memory."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def probe(lab_name: str, task_steps: list[int] | None, with_steps: bool) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    from labkit import records
    from labkit.errors import LabkitError
    from labkit.localcloud import control

    home = control.default_home()
    answer: dict[str, Any] = {"lab": lab_name, "probed_at": records.now(), "cloud": "down", "tasks": {},
                              "steps": {}, "records": records.lab_records(home, lab_name)}
    if not control.cloud_status(home).running:
        return answer
    from labkit import checks, steps, tasks
    from labkit.session import Lab

    lab = Lab(name=lab_name)
    answer["cloud"] = "up"
    for step in task_steps or sorted(tasks.TASKS):
        try:
            result = tasks.task_check(step, lab)
            answer["tasks"][str(step)] = {"passed": result.passed, "detail": result.detail}
        except (ClientError, BotoCoreError, LabkitError, OSError) as exc:
            answer["tasks"][str(step)] = {"passed": False, "detail": str(exc).splitlines()[0]}
    if with_steps:
        for step in steps.STEPS:
            try:
                frame = checks.step_checks(lab, step)
                answer["steps"][str(step)] = [int(frame["passed"].sum()), len(frame)]
            except (ClientError, BotoCoreError, LabkitError, OSError) as exc:
                answer["steps"][str(step)] = [0, 0]
                answer.setdefault("errors", {})[str(step)] = str(exc).splitlines()[0]
    return answer


def main(argv: list[str] | None = None) -> int:
    _not_dumpable()
    os.environ["LABKIT_RECORDS"] = "off"
    parser = argparse.ArgumentParser(prog="labkit.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default=os.environ.get("LABKIT_LAB", "orders-lab"))
    parser.add_argument("--task", type=int, action="append", default=None, help="only these tasks (repeat)")
    parser.add_argument("--steps", action="store_true", help="every step's checks too")
    args = parser.parse_args(argv)
    try:
        answer = probe(args.lab, args.task, args.steps)
    except Exception as exc:  # the service shows why, instead of a silent row
        answer = {"lab": args.lab, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
