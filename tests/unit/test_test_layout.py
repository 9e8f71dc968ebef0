"""The tests' own layout: helpers come from tests/helpers/ (or a folder's helper modules), never from a conftest or a
test module; conftests hold fixtures and hooks, and they and the test modules leave sys.path to pytest (pyproject's
``pythonpath``); test modules wait with ``until`` or a botocore waiter, not with loops of their own; one ``free_port``."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("tests", "bench")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, node: ast.ImportFrom) -> str:
    """The absolute name of the module ``from ... import`` reads (relative imports resolved against ``path``)."""
    if not node.level:
        return node.module or ""
    package = _module_name(path).split(".")[:len(path.relative_to(ROOT).parts) - node.level]
    return ".".join([*package, *([node.module] if node.module else [])])


def _is_test_module(name: str) -> bool:
    return name.rsplit(".", 1)[-1].startswith("test_")


def _is_conftest(name: str) -> bool:
    return name.rsplit(".", 1)[-1] == "conftest"


def _touches_sys_path(node: ast.AST) -> bool:
    """``sys.path.insert(...)``/``append``/``extend``/``+=``/``=``."""
    def is_sys_path(expr: ast.AST) -> bool:
        return (isinstance(expr, ast.Attribute) and expr.attr == "path" and isinstance(expr.value, ast.Name)
                and expr.value.id == "sys")

    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return is_sys_path(node.func.value)
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(is_sys_path(target) for target in targets)
    return False


def _sleeps(loop: ast.AST) -> bool:
    return any(isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "sleep"
               for call in ast.walk(loop))


def problems(path: Path, source: str) -> list[str]:
    """What ``source`` (the file at ``path``) does that the layout forbids, one line each."""
    name, out = _module_name(path), []
    where = path.relative_to(ROOT)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = _imported(path, node)
            ours = module.split(".")[0] in CHECKED
            submodules = [f"{module}.{alias.name}" for alias in node.names]  # from package import test_x
            if _is_conftest(module) or any(_is_conftest(sub) for sub in submodules):
                out.append(f"{where}:{node.lineno} imports from {module}'s conftest: helpers belong in tests/helpers/")
            elif ours and (_is_test_module(module) or any(_is_test_module(sub) for sub in submodules)):
                out.append(f"{where}:{node.lineno} imports from a test module ({module}): move what it shares "
                           "into a helper module")
            elif ours and any(alias.name.startswith("_") for alias in node.names):
                private = ", ".join(alias.name for alias in node.names if alias.name.startswith("_"))
                out.append(f"{where}:{node.lineno} imports private {private} from {module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_conftest(alias.name) or (alias.name.split(".")[0] in CHECKED and _is_test_module(alias.name)):
                    out.append(f"{where}:{node.lineno} imports {alias.name}")
        elif isinstance(node, ast.FunctionDef) and node.name.lstrip("_") == "free_port" and \
                name != "tests.helpers":
            out.append(f"{where}:{node.lineno} defines its own free_port: use tests.helpers.free_port")
        if (_is_test_module(name) or _is_conftest(name)) and _touches_sys_path(node):
            out.append(f"{where}:{getattr(node, 'lineno', '?')} changes sys.path: pyproject's pythonpath sets it")
        if (_is_test_module(name) or _is_conftest(name)) and isinstance(node, ast.While) and _sleeps(node):
            out.append(f"{where}:{node.lineno} polls in a loop of its own: use tests.helpers.until or a waiter")
    return out


def test_tests_take_their_helpers_from_helper_modules():
    found = [line for folder in CHECKED for path in sorted((ROOT / folder).rglob("*.py"))
             for line in problems(path, path.read_text())]
    assert found == [], "\n".join(found)


def test_the_check_sees_each_kind_of_problem():
    """The scan above must be able to fail: each forbidden form, in a made-up module, is reported."""
    module = ROOT / "tests" / "localcloud" / "test_made_up.py"
    conftest = ROOT / "tests" / "app" / "conftest.py"
    source = ("import time\nimport sys\n"
              "from tests.conftest import free_port\n"
              "from .conftest import make_zip\n"
              "from tests.localcloud.test_ec2 import launch\n"
              "from tests.localcloud.lambda_helpers import _private\n"
              "from . import test_rds\n"
              "import tests.localcloud.test_network\n"
              "def _free_port():\n    return 0\n"
              "def wait():\n    while True:\n        time.sleep(1)\n")
    found = problems(module, source)
    assert [line.split(" ", 1)[0] for line in found] == [
        f"tests/localcloud/test_made_up.py:{n}" for n in (3, 4, 5, 6, 7, 8, 9, 12)], found
    path_hacks = "import sys\nsys.path.insert(0, 'flask_app')\nsys.path += ['x']\n"
    assert sorted(problems(conftest, path_hacks)) == [
        "tests/app/conftest.py:2 changes sys.path: pyproject's pythonpath sets it",
        "tests/app/conftest.py:3 changes sys.path: pyproject's pythonpath sets it"]
    assert len(problems(module, path_hacks)) == 2
    assert problems(ROOT / "tests" / "helpers" / "made_up.py", path_hacks) == []  # bench scripts and helpers: not this rule
    clean = ("from tests.helpers import free_port, until\nfrom tests.helpers.ec2 import launch\n"
             "from tests.faults import inject as faults\nfrom labkit.localcloud import _x\n")
    assert problems(module, clean) == []
