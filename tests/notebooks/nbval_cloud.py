"""pytest plugin for the nbval run: a fresh local cloud on free ports, and no secret in any output.

Loaded with ``-p tests.notebooks.nbval_cloud``. The notebook kernels inherit LABKIT_HOME and the ports,
so the series runs against a cloud of its own, which is stopped (with everything it started) at the end.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers import free_port

_state: dict = {}


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("nbval_lax", default=False) and not config.getoption("nbval", default=False):
        return
    home = Path(tempfile.mkdtemp(prefix="labkit-nbval-"))
    _state.update(home=home, secrets=set())
    os.environ.update({"LABKIT_HOME": str(home), "LABKIT_CLOUD_PORT": str(free_port()),
                       "LABKIT_APP_PORT": str(free_port()), "MPLBACKEND": "Agg",
                       "LABKIT_RUN_DIR": str(home / "runs")})  # the lab report, not into the repository


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the notebooks as ``labkit run`` does: with ``solutions = True`` in each parameters cell that has it,
    so every "Your turn" reference solution runs and its check must pass (papermill's way: the value is
    assigned after the notebook's own)."""
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None and "parameters" in cell.metadata.get("tags", []) and "solutions = " in cell.source:
            cell.source += "\nsolutions = True  # set by tests/notebooks/nbval_cloud.py"


def pytest_unconfigure(config: pytest.Config) -> None:
    home = _state.get("home")
    if not home:
        return
    from labkit.localcloud import control

    control.stop_cloud(home)
    shutil.rmtree(home, ignore_errors=True)


def _current_password() -> str | None:
    from labkit.localcloud import control

    status = control.cloud_status(_state["home"])
    if not status.running:
        return None
    import boto3

    sm = boto3.client("secretsmanager", endpoint_url=status.endpoint, region_name="us-east-1",
                      **control.admin_credentials(_state["home"]))
    try:
        return json.loads(sm.get_secret_value(SecretId="order-db-secret")["SecretString"]).get("password")
    except Exception:  # not created yet, or already deleted
        return None


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Fail the run if any cell output so far contains the database master password."""
    if "home" not in _state or not hasattr(item, "test_outputs"):
        return
    password = _current_password()
    if password:
        _state["secrets"].add(password)
    text = json.dumps(item.test_outputs or [], default=str)
    for secret in _state["secrets"]:
        if secret and secret in text:
            raise AssertionError(f"{item.nodeid}: a cell output contains the database password")
