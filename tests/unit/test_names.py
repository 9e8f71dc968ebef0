"""The names layer: fix hints name notebooks that exist, and it stays at the bottom (imports no step module)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from labkit import names
from labkit.steps import STEPS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
STEP_MODULES = {"checks", "compute", "database", "functions", "iam", "network", "schedule", "secrets", "steps",
                "storage", "teardown", "troubleshoot", "verify", "diagram", "cli", "runner"}


@pytest.mark.parametrize("number", sorted(names.STEP_NOTEBOOKS))
def test_each_step_hint_names_a_notebook_that_exists(number: int):
    hint = names.run_first(number)
    mentioned = re.findall(r"\b\d\d_[a-z0-9_]+\b", hint)
    assert mentioned == [STEPS[number].notebook]
    assert mentioned[0] in NOTEBOOKS, f"{hint!r} names a notebook that does not exist"


def test_no_labkit_message_names_a_missing_notebook():
    for path in sorted((ROOT / "labkit").rglob("*.py")):
        for name in re.findall(r"\b\d\d_[a-z][a-z0-9_]+\b", path.read_text()):
            assert name in NOTEBOOKS, f"{path.relative_to(ROOT)} names the notebook {name}, which does not exist"


@pytest.mark.parametrize("module", ["names", "lookups", "tagging", "errors"])
def test_the_bottom_layer_imports_no_step_module(module: str):
    tree = ast.parse((ROOT / "labkit" / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "labkit":
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit."):
            imported.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            imported |= {a.name.split(".")[1] for a in node.names if a.name.startswith("labkit.")}
    assert not imported & STEP_MODULES, f"labkit/{module}.py imports {imported & STEP_MODULES}"


def test_no_labkit_module_imports_inside_a_function_to_dodge_a_cycle():
    lazy_ok = {"cli.py", "__init__.py"}  # keep `labkit --help` and `import labkit` fast
    for path in sorted((ROOT / "labkit").glob("*.py")):
        if path.name in lazy_ok:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("labkit"):
                        pytest.fail(f"{path.name}: {node.name} imports {inner.module} inside the function")
