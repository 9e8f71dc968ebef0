"""The names layer: fix hints name notebooks that exist, and it stays at the bottom (imports no step module)."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import names
from labkit.steps import STEPS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
STEP_MODULES = {"checks", "compute", "database", "functions", "iam", "network", "schedule", "secretsmanager", "steps",
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
    # cli, __init__, config: keep `labkit --help` and `import labkit` fast; probe: loads the lab's code only once it
    # has made itself non-dumpable (no process of the student's may attach to it meanwhile)
    lazy_ok = {"cli.py", "__init__.py", "config.py", "probe.py"}
    for path in sorted((ROOT / "labkit").glob("*.py")):
        if path.name in lazy_ok:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("labkit"):
                        pytest.fail(f"{path.name}: {node.name} imports {inner.module} inside the function")


# -- the local cloud's structure ------------------------------------------------------------------------------------
LOCALCLOUD = ROOT / "labkit" / "localcloud"
SERVICE_PACKAGES = {p.name for p in LOCALCLOUD.iterdir() if p.is_dir() and (p / "__init__.py").exists()} - {"core"}
CLIENT_SIDE = {"labkit.localcloud", "labkit.localcloud.control", "labkit.localcloud.credentials",
               "labkit.localcloud.checkpoints", "labkit.localcloud.procs"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _localcloud_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(LOCALCLOUD.rglob("*.py"))}


def _top_level_imports(path: Path, known: set[str]) -> set[str]:
    """The labkit.localcloud modules ``path`` imports when it is imported (not inside functions, not only for the
    type checker)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in [node] if isinstance(node, (ast.Import, ast.ImportFrom)) else []:
            if isinstance(inner, ast.Import):
                names = [a.name for a in inner.names]
            else:
                base = inner.module or ""
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in inner.names]
            found |= {n for n in names if n in known}
    return found


def test_at_most_eight_modules_stay_at_the_root_of_localcloud():
    root = sorted(p.name for p in LOCALCLOUD.glob("*.py"))
    assert len(root) <= 8, root


def test_the_core_imports_no_service_package():
    modules = _localcloud_modules()
    for name, path in modules.items():
        if not name.startswith("labkit.localcloud.core"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            imported = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for target in imported:
                package = target.split(".")[2] if target.startswith("labkit.localcloud.") else ""
                assert package not in SERVICE_PACKAGES and target != "labkit.localcloud.server", \
                    f"{name} imports {target}: the core knows no service (labkit.localcloud.server composes them)"


def test_the_local_cloud_has_no_import_circle():
    modules = _localcloud_modules()
    graph = {name: _top_level_imports(path, set(modules)) - {name} for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            pytest.fail("import circle: " + " -> ".join(trail[trail.index(name):] + [name]))
        if name in done:
            return
        for target in sorted(graph.get(name, ())):
            visit(target, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_no_labkit_module_uses_another_modules_private_names():
    for path in sorted((ROOT / "labkit").rglob("*.py")):
        tree = ast.parse(path.read_text())
        modules = {alias.asname or alias.name.split(".")[-1]
                   for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                   for alias in node.names
                   if (isinstance(node, ast.Import) and alias.name.startswith("labkit"))
                   or (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit"))}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.relative_to(ROOT)} imports {private} from {node.module}"
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and (node.value.id in modules or node.value.id == "lab") \
                    and node.attr.startswith("_") and not node.attr.startswith("__"):
                pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} reads {node.value.id}.{node.attr}")


def test_the_client_side_imports_no_moto_and_no_daemon_module():
    """What a notebook imports through labkit.Lab (and the ``labkit`` command) stays out of the daemon."""
    code = ("import sys, labkit, labkit.session, labkit.cli, labkit.steps, labkit.checks, labkit.tasks, labkit.report\n"
            "print('\\n'.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=ROOT).stdout.split()
    assert not [m for m in loaded if m == "moto" or m.startswith("moto.")]
    daemon = [m for m in loaded if m.startswith("labkit.localcloud") and m not in CLIENT_SIDE]
    assert not daemon, f"the client side imports {daemon}"


# -- the report bucket's name (issue 25 item 6) ----------------------------------------------------------------
class _Lab:
    def __init__(self, name: str, region: str = "us-east-1", account_id: str = "123456789012") -> None:
        self.name, self.region, self.account_id = name, region, account_id


BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")  # S3's general purpose rules (no dots used here)


@pytest.mark.parametrize("lab_name", ["orders-lab", "a" * 31, "abc-" + "d" * 26 + "-", "x-" * 15 + "y", "xn--lab",
                                      "sthree-lab", "amzn-s3-demo-lab"])
@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-2", "us-gov-west-1", "eu-central-2"])
def test_the_bucket_name_is_valid(lab_name, region):
    name = names.bucket_name(_Lab(lab_name, region))
    assert BUCKET.match(name) and len(name) <= 63, name
    assert not name.startswith(names.RESERVED_BUCKET_PREFIXES)
    assert name.endswith(f"-reports-123456789012-{region}")  # the account and the region always whole


def test_a_name_that_fits_is_as_before():
    assert names.bucket_name(_Lab("orders-lab")) == "orders-lab-reports-123456789012-us-east-1"


def test_long_lab_names_get_buckets_of_their_own():
    """Cut at 63 characters, two labs whose names differ only at the end (or whose regions do) shared one bucket."""
    long_a, long_b = "class-2026-section-a-group-0001", "class-2026-section-a-group-0002"
    assert len(long_a + "-reports-123456789012-ap-southeast-2") > 63
    buckets = {names.bucket_name(_Lab(n, r)) for n in (long_a, long_b) for r in ("ap-southeast-1", "ap-southeast-2")}
    assert len(buckets) == 4
    assert names.bucket_name(_Lab(long_a, "ap-southeast-2")) == names.bucket_name(_Lab(long_a, "ap-southeast-2"))
