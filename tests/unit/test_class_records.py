"""The instructor's records without a Hub: the ledger's trust rules, the grades' shape, the report's seal, the lab's
own task records and the notebook update's merge rules. (scripts/classroom_check.py runs them for real, on a Hub.)"""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from class_grades import class_table, grades_csv, student_row
from class_ledger import Ledger

from labkit import records, report_seal

T0 = "2099-01-01T10:00:00+00:00"  # after any claim the tests send (claims carry the real time)
CATALOGUE = {"tasks": {"1": "Tag the VPC", "2": "Tag the group"}, "steps": {"1": "Create VPC", "2": "Subnet group"}}


def _probe(passed: dict[int, bool], steps: dict[int, tuple[int, int]] | None = None,
           lab_records: dict | None = None, cloud: str = "up") -> dict:
    return {"cloud": cloud, "records": {"tasks": lab_records or {}},
            "tasks": {str(s): {"passed": p, "detail": "as the cloud says"} for s, p in passed.items()},
            "steps": {str(s): list(v) for s, v in (steps or {}).items()}}


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "class" / "ledger.sqlite")


def test_passed_comes_from_the_probe_only_and_a_forged_claim_is_refused(ledger):
    ledger.claim("ada", {"step": 1, "passed": True, "solution": False})
    ledger.apply_probe("ada", at=T0, probe=_probe({1: False, 2: False},
                                     lab_records={"1": {"first_passed": "2020-01-01", "by": "own", "passed": True}}))
    row = ledger.student("ada")
    assert row["tasks"][1]["first_passed"] is None and row["refused"] == 1, row
    assert "the cloud says not yet" in ledger.events("ada", "claim refused")[0]["detail"]
    ledger.apply_probe("ada", at=T0.replace("10:00", "10:05"), probe=_probe({1: True, 2: False}))
    assert ledger.student("ada")["tasks"][1]["first_passed"] == "2099-01-01T10:05:00+00:00"  # the service's time
    assert ledger.student("ada")["tasks"][1]["by"] == "own"


def test_the_solution_mark_is_taken_from_any_source_and_never_taken_back(ledger):
    ledger.claim("bob", {"step": 1, "passed": True, "solution": True})
    ledger.apply_probe("bob", at=T0, probe=_probe({1: True, 2: False},
                                     lab_records={"2": {"solution_ran": True, "solution_at": "2026-01-01T09:59"}}))
    ledger.apply_probe("bob", at="2099-01-01T10:01:00+00:00", probe=_probe({1: True, 2: True}, lab_records={}))
    row = ledger.student("bob")
    assert row["tasks"][1]["by"] == "solution" and row["tasks"][2]["by"] == "solution"
    assert row["tasks"][2]["solution_ran"] == 1 and row["refused"] == 0


def test_own_work_stays_own_when_the_solution_runs_later_and_a_checkpoint_is_handed_out(ledger):
    ledger.apply_probe("cy", at=T0, probe=_probe({1: True, 2: False}))
    ledger.claim("cy", {"step": 1, "passed": True, "solution": True})
    ledger.reset("cy", "to checkpoint steps-1-2", "teacher")
    ledger.apply_probe("cy", at="2099-01-01T11:00:00+00:00", probe=_probe({1: True, 2: True}), handed_out=True)
    row = ledger.student("cy")
    assert row["tasks"][1]["by"] == "own" and row["tasks"][1]["solution_ran"] == 1
    assert row["tasks"][2]["by"] == "checkpoint"
    assert [e["kind"] for e in ledger.events("cy")] == ["solution ran", "lab reset"]


def test_a_reset_keeps_what_was_earned_and_steps_keep_their_best(ledger):
    ledger.apply_probe("dee", at=T0, probe=_probe({1: True}, steps={1: (8, 8), 2: (1, 2)}))
    ledger.reset("dee", "to empty", "teacher")
    ledger.apply_probe("dee", at="2099-01-01T10:10:00+00:00", probe=_probe({1: False}, steps={1: (0, 8), 2: (0, 2)}))
    row = ledger.student("dee")
    assert row["tasks"][1]["first_passed"] and not row["tasks"][1]["passed_now"]
    assert row["steps"][1] == {"passed": 0, "total": 8, "best_passed": 8, "best_total": 8}


def test_grades_csv_is_canvas_gradebook_shaped(ledger):
    ledger.apply_probe("ada", at=T0, probe=_probe({1: True, 2: False}, steps={1: (8, 8), 2: (1, 2)}))
    ledger.claim("bob", {"step": 1, "passed": True, "solution": True})
    ledger.apply_probe("bob", at=T0, probe=_probe({1: True, 2: True}, steps={1: (8, 8), 2: (2, 2)}))
    users = [{"name": n, "servers": {"": {"ready": True}}, "last_activity": "2099-01-01T10:00:00Z"}
             for n in ("ada", "bob")]
    table = class_table(CATALOGUE, [student_row(u, ledger.student(u["name"])) for u in users], ledger.events())
    rows = list(csv.reader(io.StringIO(grades_csv(table, "Lab A"))))
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[0][5:] == ["Orders Lab task 01: Tag the VPC", "Orders Lab task 02: Tag the group",
                           "Orders Lab step 01: Create VPC", "Orders Lab step 02: Subnet group",
                           "Final Points", "Final Score"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "1", "1", "1", "1", "4", "100"]
    assert rows[2] == ["ada", "", "", "ada", "Lab A", "1", "0", "1.00", "0.50", "2.5", "62.5"]
    assert rows[3] == ["bob", "", "", "bob", "Lab A", "0", "1", "1.00", "1.00", "3", "75.0"]
    assert json.loads(json.dumps(table))["students"][1]["tasks"]["1"]["status"] == "reference solution"


def test_a_sealed_report_verifies_and_any_edit_is_detected():
    key, other_key = b"k" * 32, b"o" * 32
    page = f"<html><body><h1>Orders Lab report: ada</h1><p>not yet</p>{report_seal.SLOT}</body></html>"
    facts = {"student": "ada", "lab": "orders-lab", "signed_at": "2099-01-01T10:00:00+00:00",
             "tasks": {"1": {"first_passed": "2026-01-01T09:00:00+00:00", "by": "own", "solution_ran": False}},
             "solutions_ran": []}
    sealed = report_seal.seal(page, facts, key)
    assert report_seal.verify(sealed, key)[0]
    assert "own work" in sealed
    for edited in (sealed.replace("not yet", "passed"), sealed.replace("own work", "x"),
                   sealed.replace("ada", "bob")):
        valid, finding, _ = report_seal.verify(edited, key)
        assert not valid and ("edited" in finding or "not this class service's" in finding), finding
    assert not report_seal.verify(sealed, other_key)[0]
    forged = report_seal.seal(page.replace("not yet", "passed"), facts, other_key)
    assert "not this class service's" in report_seal.verify(forged, key)[1]
    assert "no seal" in report_seal.verify(page, key)[1]


def test_the_labs_own_record_marks_who_made_a_task_pass(tmp_path, monkeypatch):
    monkeypatch.delenv(records.CLASS_URL, raising=False)
    lab = SimpleNamespace(name="orders-lab", config=SimpleNamespace(home=tmp_path))
    records.note_check(lab, 1, False, solution=False)
    records.note_check(lab, 1, True, solution=False)
    records.note_check(lab, 1, True, solution=True)
    records.note_check(lab, 2, True, solution=True)
    kept = records.lab_records(tmp_path, "orders-lab")["tasks"]
    assert kept["1"]["by"] == "own" and kept["1"]["solution_ran"] and kept["2"]["by"] == "solution"
    assert records.solutions_ran(tmp_path, "orders-lab") == [1, 2]
    monkeypatch.setenv(records.OFF, "off")  # the class service's probe reads only
    records.note_check(lab, 3, True, solution=False)
    assert "3" not in records.lab_records(tmp_path, "orders-lab")["tasks"]


def _notebook(path: Path, sources: list[str]) -> None:
    cells = [{"cell_type": "markdown", "id": f"c{i}", "metadata": {}, "source": [s]} for i, s in enumerate(sources)]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n")


@pytest.mark.skipif(not shutil.which("git"), reason="git is needed")
def test_a_notebook_update_keeps_the_students_edit_and_replaces_what_they_never_changed(tmp_path):
    from course_repo import publish

    from labkit import course

    source, repo, mine = tmp_path / "src", tmp_path / "course.git", tmp_path / "home" / "orders-lab" / "notebooks"
    source.mkdir()
    _notebook(source / "01.ipynb", ["# Step 1", "intro", "build", "your code here", "check"])
    _notebook(source / "02.ipynb", ["# Step 2", "old text"])
    publish(source, repo, "first")
    mine.parent.mkdir(parents=True)
    assert course.pull(str(repo), mine)["first_copy"]
    _notebook(mine / "01.ipynb", ["# Step 1", "intro", "build", "MY ANSWER", "check"])
    _notebook(source / "01.ipynb", ["# Step 1 (fixed)", "intro", "build", "your code here", "check"])
    _notebook(source / "02.ipynb", ["# Step 2", "new text"])
    (source / "03.ipynb").write_text((source / "02.ipynb").read_text())
    assert publish(source, repo, "Fix step 1's title; step 3 is new") is not None
    summary = course.pull(str(repo), mine)
    assert summary["kept_edits"] == ["01.ipynb"] and summary["replaced"] == ["02.ipynb"]
    assert summary["added"] == ["03.ipynb"] and summary["notes"] == ["Fix step 1's title; step 3 is new"]
    cells = ["".join(c["source"]) for c in json.loads((mine / "01.ipynb").read_text())["cells"]]
    assert cells == ["# Step 1 (fixed)", "intro", "build", "MY ANSWER", "check"]
    assert "new text" in (mine / "02.ipynb").read_text()
    told = (mine.parent / "WHAT-CHANGED.md").read_text()
    assert "Fix step 1's title" in told and "`02.ipynb`" in told and "`01.ipynb`" in told
    assert publish(source, repo) is None  # nothing changed: no commit
    subprocess.run(["git", "-C", str(mine), "status"], check=True, capture_output=True)
