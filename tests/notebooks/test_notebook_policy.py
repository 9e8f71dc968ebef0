"""The committed notebooks follow the lab's rules: title, then parameters; clean outputs, no secrets, one lesson each."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["00_start_here", *[f"{n:02d}_" for n in range(1, 14)], "14_verification", "15_troubleshooting",
            "99_teardown"]
SECRETISH = re.compile(r'(?i)("password"\s*:\s*"[^"*]+"|password\s*=\s*\S+|aws_secret_access_key\s*=\s*\S{8,})')


def test_the_series_is_complete_and_numbered():
    names = [p.stem for p in NOTEBOOKS]
    assert len(names) == len(EXPECTED)
    for name, expected in zip(names, EXPECTED):
        assert name.startswith(expected)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_policy(path: Path):
    notebook = json.loads(path.read_text())
    cells = notebook["cells"]
    title = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and title.startswith("# "), "a notebook opens with its title"
    assert re.search(r"^\*Time: about .+\*\*Builds on:\*\* .+\*$", title, re.M), "time estimate and what it builds on"
    first = next(c for c in cells if c["cell_type"] == "code")
    assert "parameters" in first["metadata"].get("tags", []), "the first code cell holds the parameters"
    assert cells.index(first) == 1, "the parameters cell follows the introduction"
    source = "".join(first["source"])
    for name in ("target", "lab_name", "region", "confirm"):
        assert re.search(rf"^{name} = ", source, re.M), f"parameter {name} missing"
    assert re.search(r"^region = None", source, re.M), "the region comes from the lab's configuration chain"
    assert re.search(r"^confirm = False", source, re.M), "a notebook never confirms spending by itself"
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "us-east-1" not in code, "no notebook hard-codes a region"
    for call in re.findall(r"labkit\.Lab\([^)]*\)", code):
        assert "confirm=confirm" in call, f"{call}: every lab gets the notebook's confirmation (one model)"
        assert "policies" not in call, f"{call}: the policy mode is the lab's, stored with it"
    assert any(c["cell_type"] == "markdown" for c in cells), "a lesson needs prose"
    checked = 0
    for index, cell in enumerate(cells):
        text = "".join(cell.get("source", []))
        assert "input(" not in text, f"cell {index} asks for user input"
        if cell["cell_type"] != "code":
            continue
        assert "NBVAL_" not in text, f"cell {index}: nbval's markers are cell tags (nbval-check-output), not comments"
        if "nbval-check-output" in cell["metadata"].get("tags", []):
            checked += 1
            assert cell["outputs"], f"cell {index} is checked but has no expected output"
        else:
            assert not cell["outputs"], f"cell {index} has outputs but is not tagged nbval-check-output"
        assert not SECRETISH.search(json.dumps(cell.get("outputs", []))), f"cell {index} output looks secret"
    assert checked >= 1, "every notebook ends with a checked summary line"


def test_clean_script_finds_nothing_to_clean():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "clean_notebooks.py"), "--check",
                             *map(str, NOTEBOOKS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_clean_script_strips_unmarked_outputs(tmp_path: Path):
    notebook = {"cells": [
        {"cell_type": "code", "metadata": {}, "source": ["1 + 1"], "execution_count": 3,
         "outputs": [{"output_type": "execute_result", "data": {"text/plain": "2"}, "metadata": {}, "execution_count": 3}]},
        {"cell_type": "code", "metadata": {"tags": ["nbval-check-output"]}, "source": ["print('ok')"], "execution_count": 4,
         "outputs": [{"output_type": "stream", "name": "stdout", "text": "ok\n"}]}],
        "metadata": {"papermill": {"duration": 1}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(notebook))
    subprocess.run([sys.executable, str(ROOT / "scripts" / "clean_notebooks.py"), str(path)], check=True)
    cleaned = json.loads(path.read_text())
    assert cleaned["cells"][0]["outputs"] == [] and cleaned["cells"][1]["outputs"][0]["text"] == "ok\n"
    assert "papermill" not in cleaned["metadata"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_students_do_and_check_their_understanding(path: Path):
    """01-13 end with a "Your turn" task: a cell for the student, a reference solution that runs only with
    ``solutions = True`` (False by default), and a check; every notebook ends with a three-question knowledge
    check whose answers are folded; in 15 every case asks for a prediction before the break."""
    cells = {c.get("id"): c for c in json.loads(path.read_text())["cells"]}
    number = int(path.stem[:2])
    params = "".join(next(c for c in cells.values() if "parameters" in c["metadata"].get("tags", []))["source"])
    if 1 <= number <= 13:
        assert re.search(r"^solutions = False ", params, re.M), "the student's run leaves the task to the student"
        nn = f"{number:02d}"
        assert "## Your turn" in "".join(cells[f"your-turn-{nn}"]["source"])
        assert f"tasks.task_check({number}, lab, require=solutions)" in "".join(cells[f"your-turn-{nn}-check"]["source"])
        turn = "".join(cells[f"your-turn-{nn}"]["source"])
        assert [tier in turn for tier in HINT_TIERS] == [True] * 3, "hints in three tiers: idea, API, call"
        _folded_solution(cells[f"your-turn-{nn}-solution"])
    elif number == 15:
        assert re.search(r"^solutions = False ", params, re.M), "the student's run leaves the fixes to the student"
    else:
        assert "solutions" not in params
    quiz = "".join(json.loads(path.read_text())["cells"][-1]["source"])
    assert quiz.startswith("## Knowledge check") and quiz.count("<details><summary>Answer</summary>") == 3
    if number == 15:
        _troubleshooting_is_done_by_the_student(cells)


def _troubleshooting_is_done_by_the_student(cells: dict) -> None:
    """Each of the seven cases: a prediction with its answer folded, the break, evidence, a fix the student writes
    (hints in three tiers), the reference fix folded away and run only with ``solutions``, and a check."""
    from labkit.troubleshoot_cases import CASES

    for key, case in CASES.items():
        heading = "".join(cells[f"case-{key}"]["source"])
        assert heading.startswith(f"## {case.number}. ") and "**Predict**" in heading
        assert "<details><summary>Answer</summary>" in heading, heading[:60]
        assert f'cases.break_it(lab, "{key}")' in "".join(cells[f"case-{key}-break"]["source"])
        assert "**Diagnose.**" in "".join(cells[f"case-{key}-diagnose"]["source"])
        assert f"case-{key}-evidence-1" in cells, "the evidence is shown, not told"
        fix = "".join(cells[f"case-{key}-fix"]["source"])
        assert "**Fix it yourself" in fix and [t in fix for t in HINT_TIERS] == [True] * 3, fix[:80]
        assert "".join(cells[f"case-{key}-code"]["source"]).startswith("# Your fix here")
        _folded_solution(cells[f"case-{key}-solution"])
        assert f'cases.check_fix(lab, "{key}", require=solutions)' in "".join(cells[f"case-{key}-check"]["source"])


HINT_TIERS = ("<summary>Hint 1: the idea</summary>", "<summary>Hint 2: which API</summary>",
              "<summary>Hint 3: the call</summary>")


def _folded_solution(cell: dict) -> None:
    """A reference solution runs only with ``solutions = True``, all of it, and is folded away in JupyterLab."""
    source = "".join(cell["source"])
    assert re.search(r"^if solutions:\n", source, re.M) and not re.search(r"^[^#\s]", source.split(
        "if solutions:", 1)[1], re.M), "the whole reference solution sits under `if solutions:`"
    assert cell["metadata"].get("jupyter", {}).get("source_hidden") is True, "the reference solution is folded"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_students_see_no_assert_statements(path: Path):
    """Checks a student runs are labkit calls that raise a LabkitError with a hint, never a bare ``assert``."""
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] == "code":
            assert not re.search(r"^\s*assert\b", "".join(cell["source"]), re.M), f"cell {index} asserts"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_states_its_objectives_and_the_outcomes_it_serves(path: Path):
    """Under the title: what the student can do after it, and which of the tutorial's eight outcomes it serves,
    exactly as labkit.outcomes maps them (the map 14 ends with); 00 names all eight."""
    from labkit.outcomes import OUTCOMES, outcomes_of

    title = "".join(json.loads(path.read_text())["cells"][0]["source"])
    assert re.search(r"^\*\*Objectives\.\*\* After this notebook you can\n\n(\* .+\n)+", title, re.M), "objectives"
    line = re.search(r"^\*\*Learning outcomes:\*\* (.*)$", title, re.M)
    assert line, "the learning outcomes it serves"
    if path.stem == "00_start_here":
        assert all(f"{n}. {outcome}" in title for n, outcome in enumerate(OUTCOMES, 1))
    else:
        assert line.group(1).split(" · ") == outcomes_of(path.stem)


def test_the_outcome_map_names_real_notebooks_and_14_ends_with_it():
    from labkit.outcomes import OUTCOMES, WHERE, recap_frame

    assert list(WHERE) == list(OUTCOMES) and all(WHERE[o] for o in OUTCOMES), "each of the eight is somewhere"
    stems = {p.stem for p in NOTEBOOKS}
    assert {nb for places in WHERE.values() for nb, _ in places} <= stems
    cells = json.loads((ROOT / "notebooks" / "14_verification.ipynb").read_text())["cells"]
    assert "outcomes.recap_frame()" in "".join(cells[-2]["source"]), "the recap comes just before the knowledge check"
    frame = recap_frame()
    assert [o.split(". ", 1)[1] for o in frame["outcome"] if o] == list(OUTCOMES)


def _minutes(path: Path) -> int:
    title = "".join(json.loads(path.read_text())["cells"][0]["source"])
    return int(re.search(r"^\*Time: about (\d+) minutes", title, re.M).group(1))


def test_the_session_plan_adds_up():
    """00's plan: each session's time is the sum of its notebooks' own estimates, and the total is said."""
    start = "".join(c for cell in json.loads(NOTEBOOKS[0].read_text())["cells"] for c in cell["source"])
    rows = re.findall(r"^\| \d\. [^|]+\| `(\d\d)_\w+`(?: to `(\d\d)_\w+`|((?:, `\d\d_\w+`)+))? \| about (\d+) minutes",
                      start, re.M)
    assert len(rows) == 4
    by_number = {int(p.stem[:2]): p for p in NOTEBOOKS}
    total = 0
    for first, last, listed, minutes in rows:
        numbers = ([n for n in by_number if int(first) <= n <= int(last)] if last else
                   [int(first), *map(int, re.findall(r"`(\d\d)_", listed))])
        assert sum(_minutes(by_number[n]) for n in numbers) == int(minutes), (first, minutes)
        total += int(minutes)
    assert total == sum(_minutes(p) for p in NOTEBOOKS), "every notebook is in one session"
    hours = re.search(r"takes \*\*about (\d)½ hours\*\*", start)
    assert hours and abs(total / 60 - (int(hours.group(1)) + 0.5)) <= 0.25


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cli_commands_are_code_blocks_not_prose(path: Path):
    """An AWS CLI command in prose breaks inside words when the page wraps it: commands sit in fenced blocks."""
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            prose = re.sub(r"```.*?```", "", "".join(cell["source"]), flags=re.S)
            assert not re.search(r"`aws [a-z0-9-]+ [a-z0-9-]+[^`]*`", prose), prose[:80]
