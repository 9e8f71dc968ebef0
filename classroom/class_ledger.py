"""The class service's ledger: what it has seen of each student's lab, kept where no student can write.

A SQLite file in the Hub's state folder (root, mode 0700). The rules that make a row honest:

* **passed** is never taken from a record: a task is passed when the service's own probe (run as the student,
  classroom/class_probe.py) found the cloud holding it; ``first_passed`` is the time of the first probe that
  saw it (a check sent by the student's lab makes the service probe at once, so that time is seconds late).
* **the reference solution ran** is a claim against the student's interest: it is accepted from any source
  (a check their lab sent, their lab's record file) and never taken back. A task whose solution ran before the
  service first saw it pass counts as the solution's; one the student had already done stays theirs.
* a check sent by the lab that says "passed" when the probe right after says "not yet" is refused and kept as
  an event the instructor sees (a forged or stale record).
* after the instructor resets a lab to a checkpoint, what the checkpoint holds is handed out, not earned.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

OWN, SOLUTION, HANDED_OUT = "own", "solution", "checkpoint"
SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (student TEXT, step INTEGER, first_passed TEXT, by TEXT, solution_ran INTEGER,
    solution_at TEXT, passed_now INTEGER, detail TEXT, PRIMARY KEY (student, step));
CREATE TABLE IF NOT EXISTS steps (student TEXT, step INTEGER, passed INTEGER, total INTEGER, best_passed INTEGER,
    best_total INTEGER, PRIMARY KEY (student, step));
CREATE TABLE IF NOT EXISTS probes (student TEXT PRIMARY KEY, at TEXT, cloud TEXT, error TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS claims (id INTEGER PRIMARY KEY, student TEXT, step INTEGER, solution INTEGER,
    received TEXT);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, student TEXT, at TEXT, kind TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS reports (id INTEGER PRIMARY KEY, student TEXT, at TEXT, digest TEXT, facts TEXT);
"""


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        path.chmod(0o600)

    def _run(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self.db.execute(sql, args).fetchall()

    def event(self, student: str, kind: str, detail: str = "", at: str | None = None) -> None:
        self._run("INSERT INTO events (student, at, kind, detail) VALUES (?, ?, ?, ?)",
                  (student, at or now(), kind, detail))

    def events(self, student: str | None = None, kind: str | None = None) -> list[dict[str, str]]:
        rows = self._run("SELECT student, at, kind, detail FROM events ORDER BY id")
        return [{"student": s, "at": a, "kind": k, "detail": d} for s, a, k, d in rows
                if (student is None or s == student) and (kind is None or k == kind)]

    def _task(self, student: str, step: int) -> dict[str, Any]:
        rows = self._run("SELECT first_passed, by, solution_ran, solution_at, passed_now, detail FROM tasks "
                         "WHERE student = ? AND step = ?", (student, step))
        if not rows:
            return {"first_passed": None, "by": None, "solution_ran": 0, "solution_at": None, "passed_now": 0,
                    "detail": ""}
        return dict(zip(("first_passed", "by", "solution_ran", "solution_at", "passed_now", "detail"), rows[0]))

    def _save_task(self, student: str, step: int, t: dict[str, Any]) -> None:
        self._run("INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (student, step, t["first_passed"], t["by"], int(t["solution_ran"]), t["solution_at"],
                   int(t["passed_now"]), t["detail"]))

    def solution_ran(self, student: str, step: int, at: str, source: str) -> None:
        """Accepted as told: it only ever lowers what the student is credited with."""
        t = self._task(student, step)
        if not t["solution_ran"]:
            t["solution_ran"], t["solution_at"] = 1, at
            self._save_task(student, step, t)
            self.event(student, "solution ran", f"step {step} ({source})", at)

    def claim(self, student: str, record: dict[str, Any]) -> None:
        """A check the student's lab sent: the solution mark is taken now, a "passed" waits for the probe."""
        step, at = int(record["step"]), now()
        if record.get("solution"):
            self.solution_ran(student, step, at, "sent by the lab")
        if record.get("passed"):
            self._run("INSERT INTO claims (student, step, solution, received) VALUES (?, ?, ?, ?)",
                      (student, step, int(bool(record.get("solution"))), at))

    def apply_probe(self, student: str, probe: dict[str, Any], handed_out: bool = False, at: str | None = None
                    ) -> None:
        """What the service's probe found in the student's lab (as that student), applied by the rules above;
        ``at``: when the service started the probe (its own clock, never the lab's)."""
        at = at or now()
        probe = {**probe, "probed_at": at}
        self._run("INSERT OR REPLACE INTO probes VALUES (?, ?, ?, ?, ?)",
                  (student, at, probe.get("cloud", "unknown"), probe.get("error", ""), json.dumps(probe)))
        if probe.get("error"):
            return
        kept = probe.get("records", {}).get("tasks", {})
        for step_text, record in kept.items():  # the lab's own file: only its solution marks are taken
            if isinstance(record, dict) and record.get("solution_ran") and step_text.isdigit():
                self.solution_ran(student, int(step_text), str(record.get("solution_at") or at), "the lab's record")
        for step_text, seen in probe.get("tasks", {}).items():
            step = int(step_text)
            t = self._task(student, step)
            t["passed_now"], t["detail"] = int(bool(seen.get("passed"))), str(seen.get("detail", ""))[:300]
            if seen.get("passed") and not t["first_passed"]:
                lab_says = kept.get(step_text, {}) if isinstance(kept.get(step_text), dict) else {}
                t["first_passed"] = at
                t["by"] = (HANDED_OUT if handed_out else
                           SOLUTION if t["solution_ran"] or lab_says.get("by") == SOLUTION else OWN)
            self._save_task(student, step, t)
        for step_text, (passed, total) in probe.get("steps", {}).items():
            step = int(step_text)
            rows = self._run("SELECT best_passed, best_total FROM steps WHERE student = ? AND step = ?",
                             (student, step))
            best = rows[0] if rows else (0, 0)
            if passed > best[0] or (passed == best[0] and total > best[1]):
                best = (passed, total)
            self._run("INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?)",
                      (student, step, passed, total, best[0], best[1]))
        self._settle_claims(student, probe)

    def _settle_claims(self, student: str, probe: dict[str, Any]) -> None:
        """Claims of "passed" received before this probe: kept if the cloud agrees, refused if it does not."""
        if probe.get("cloud") != "up":
            return
        at = probe["probed_at"]
        for claim_id, step, received in self._run(
                "SELECT id, step, received FROM claims WHERE student = ? AND received <= ?", (student, at)):
            seen = probe.get("tasks", {}).get(str(step))
            if seen is None:
                continue
            if not seen.get("passed"):
                self.event(student, "claim refused",
                           f"step {step}: the lab's record said passed ({received}); the cloud says not yet: "
                           f"{seen.get('detail', '')}"[:300])
            self._run("DELETE FROM claims WHERE id = ?", (claim_id,))

    def pending_claims(self, student: str) -> list[int]:
        return [step for (step,) in self._run("SELECT step FROM claims WHERE student = ?", (student,))]

    def reset(self, student: str, what: str, by: str) -> None:
        self._run("UPDATE tasks SET passed_now = 0 WHERE student = ?", (student,))
        self._run("UPDATE steps SET passed = 0, total = 0 WHERE student = ?", (student,))
        self.event(student, "lab reset", f"{what} by {by}")

    def report_signed(self, student: str, digest: str, facts: dict[str, Any]) -> None:
        self._run("INSERT INTO reports (student, at, digest, facts) VALUES (?, ?, ?, ?)",
                  (student, facts["signed_at"], digest, json.dumps(facts)))

    def last_report(self, student: str) -> str | None:
        rows = self._run("SELECT at FROM reports WHERE student = ? ORDER BY id DESC LIMIT 1", (student,))
        return rows[0][0] if rows else None

    def student(self, student: str) -> dict[str, Any]:
        """Everything the ledger holds of one student: the last probe, tasks, steps, report, refused claims."""
        probe_rows = self._run("SELECT at, cloud, error, data FROM probes WHERE student = ?", (student,))
        probe = json.loads(probe_rows[0][3]) if probe_rows else {}
        tasks = {step: dict(zip(("first_passed", "by", "solution_ran", "solution_at", "passed_now", "detail"), rest))
                 for step, *rest in self._run("SELECT step, first_passed, by, solution_ran, solution_at, passed_now, "
                                              "detail FROM tasks WHERE student = ?", (student,))}
        steps = {step: {"passed": p, "total": t, "best_passed": bp, "best_total": bt}
                 for step, p, t, bp, bt in self._run("SELECT step, passed, total, best_passed, best_total FROM steps "
                                                     "WHERE student = ?", (student,))}
        return {"probed_at": probe_rows[0][0] if probe_rows else None,
                "cloud": probe_rows[0][1] if probe_rows else "unknown",
                "error": probe_rows[0][2] if probe_rows else "", "probe": probe, "tasks": tasks, "steps": steps,
                "report_signed_at": self.last_report(student),
                "lab_report": probe.get("records", {}).get("report"),
                "refused": len(self.events(student, "claim refused"))}
