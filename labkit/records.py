"""The lab's own record of its "Your turn" tasks: when each first passed, and whether the reference solution ran.

Every check a student's process runs (a notebook's ``task_check``, ``labkit tasks``, the lab report) updates
``task-records.json`` in the lab's home. A check made with ``solutions = True`` (``labkit run``, or a notebook whose
parameter says so: the reference solution ran just before it) marks the task *solution*; a task that first passed
otherwise is the student's *own* work, and stays so if the solution runs later (``solution_ran`` says it did).

On a classroom Hub each check is also sent to the class service (``ORDERS_CLASS_URL``, with the server's
``JUPYTERHUB_API_TOKEN``), which keeps its own ledger: the student cannot take back a record once sent, and the
service believes no "passed" it has not seen in the student's cloud itself (classroom/class_ledger.py). This
file is the lab's side only, what ``labkit tasks --json`` and an unsigned report show.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RECORDS_FILE = "task-records.json"
VERSION = 1
SOLUTION, OWN = "solution", "own"
OFF = "LABKIT_RECORDS"  # "off": check without recording (the class service's probe reads, never writes)
CLASS_URL = "ORDERS_CLASS_URL"  # the class service, set on a classroom Hub (classroom/jupyterhub_config.py)
SEND_TIMEOUT = 3.0


def now() -> str:
    """Wall-clock UTC (never the lab clock, which a student may move forward)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def records_path(home: Path) -> Path:
    return Path(home) / RECORDS_FILE


def read_records(home: Path) -> dict[str, Any]:
    """The lab's records (an empty set when there are none or the file cannot be read)."""
    try:
        data = json.loads(records_path(home).read_text())
    except (OSError, ValueError):
        return {"version": VERSION, "labs": {}}
    if not isinstance(data, dict) or not isinstance(data.get("labs"), dict):
        return {"version": VERSION, "labs": {}}
    return data


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[dict[str, Any]]:
    """The records, read under an exclusive lock and written back atomically (two kernels may check at once)."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    with open(home / (RECORDS_FILE + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_records(home)
        yield data
        fd, tmp = tempfile.mkstemp(dir=home, prefix=".records-")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(tmp, records_path(home))


def update_task(record: dict[str, Any], passed: bool, solution: bool, at: str) -> dict[str, Any]:
    """One check applied to a task's record: the first pass and who made it, whether the solution ever ran."""
    record["last_checked"], record["passed"] = at, bool(passed)
    if solution:
        record["solution_ran"] = True
        record.setdefault("solution_at", at)
    if passed and not record.get("first_passed"):
        record["first_passed"], record["by"] = at, SOLUTION if solution else OWN
    return record


def recording() -> bool:
    return os.environ.get(OFF, "").lower() != "off"


def note_check(lab: Any, step: int, passed: bool, solution: bool) -> None:
    """Record one task check of ``lab`` (a :class:`labkit.Lab`), and send it to the class service if there is one.

    Never raises: a record that cannot be written or sent must not fail the student's check."""
    if not recording():
        return
    at = now()
    try:
        with _locked(lab.config.home) as data:
            tasks = data["labs"].setdefault(lab.name, {}).setdefault("tasks", {})
            update_task(tasks.setdefault(str(step), {}), passed, solution, at)
    except OSError:
        pass
    send({"kind": "task", "lab": lab.name, "step": step, "passed": bool(passed), "solution": bool(solution),
          "at": at})


def note_report(lab: Any, path: Path, signed: bool) -> None:
    """Record that a lab report was written (its time, file and whether the class service signed it)."""
    if not recording():
        return
    try:
        with _locked(lab.config.home) as data:
            data["labs"].setdefault(lab.name, {})["report"] = {"at": now(), "path": str(path), "signed": signed}
    except OSError:
        pass


def lab_records(home: Path, lab_name: str) -> dict[str, Any]:
    found: dict[str, Any] = read_records(home)["labs"].get(lab_name, {})
    return found


def solutions_ran(home: Path, lab_name: str) -> list[int]:
    """The steps whose reference solution ran in this lab, by the lab's own record."""
    tasks = lab_records(home, lab_name).get("tasks", {})
    return sorted(int(step) for step, record in tasks.items() if record.get("solution_ran"))


# -- the class service on a classroom Hub ---------------------------------------------------------------------
def service_url() -> str | None:
    url = os.environ.get(CLASS_URL)
    return url.rstrip("/") + "/" if url and os.environ.get("JUPYTERHUB_API_TOKEN") else None


def service_request(path: str, body: dict[str, Any], timeout: float = SEND_TIMEOUT) -> dict[str, Any]:
    """POST ``body`` to the class service as this Hub user (their server's token); its JSON answer.

    Raises OSError (urllib's errors included) when there is no service or it refuses."""
    base = service_url()
    if base is None:
        raise OSError("no class service here (not on a classroom Hub)")
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer: dict[str, Any] = json.loads(response.read() or b"{}")
        return answer


def send(record: dict[str, Any]) -> bool:
    """Send one record to the class service; False when there is none or it did not answer (never raises)."""
    if service_url() is None:
        return False
    try:
        service_request("api/records", record)
        return True
    except (OSError, ValueError):
        return False


def student_name(given: str | None = None) -> str:
    """Who the lab belongs to: ``given`` (``--student NAME``), else the Hub user, else the account's name."""
    import getpass

    return given or os.environ.get("JUPYTERHUB_USER") or getpass.getuser()

