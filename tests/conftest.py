"""Shared fixtures: a real local cloud on a free port in a temporary LABKIT_HOME, stopped at the end.

Fixtures and hooks only: what tests call lives in tests/helpers/.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from labkit.localcloud import control
from labkit.localcloud.procs import CLOUD_MARKER, find_marked
from tests.helpers import USER_DIRS, ProvisionedLab, lab_checkpoint, start_test_cloud, stop_test_cloud

LAB_ORIGIN = pytest.StashKey[str]()  # how the session's whole lab came to be, said at the end


def pytest_configure(config: pytest.Config) -> None:
    """No test may reach real AWS: dummy credentials (the local cloud refuses them too), no profile, no instance
    metadata. Tests that talk to a local cloud sign as its admin user (``Cloud.client``).

    Nor may a test write into the user's home: `labkit run` signs what it executed in Jupyter's signature store,
    and the kernels it starts keep IPython, Jupyter and matplotlib files there. Each test session (and every
    kernel, notebook and JupyterLab it starts, which inherit the environment) gets folders of its own, removed
    at exit (after IPython's own exit handlers, registered later, have written their history there)."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})
    user_dirs = Path(tempfile.mkdtemp(prefix="labkit-tests-user-"))
    atexit.register(shutil.rmtree, user_dirs, ignore_errors=True)
    os.environ.update({name: str(user_dirs / folder) for name, folder in USER_DIRS.items()})
    (user_dirs / "matplotlib").mkdir()
    for fonts in (Path.home() / ".cache" / "matplotlib").glob("fontlist-*.json"):  # read, not written: saves its
        shutil.copy(fonts, user_dirs / "matplotlib")  # kernels rebuilding the font list (5 s)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that tear the provisioned lab down run last, whatever order the paths were given in."""
    last = [item for item in items if item.get_closest_marker("tears_down_the_lab")]
    items[:] = [item for item in items if item not in last] + last


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory):
    """One local cloud for the session (tests use unique resource names)."""
    running = start_test_cloud(tmp_path_factory.mktemp("labkit-home"))
    keys = control.admin_credentials(running.home)
    wanted = {"AWS_ENDPOINT_URL": running.endpoint, "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
              "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"]}
    previous = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield running
    finally:
        stop_test_cloud(running)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture()
def own_cloud(tmp_path: Path):
    """A cloud of the test's own, for tests that stop or reset it."""
    running = start_test_cloud(tmp_path / "home")
    try:
        yield running
    finally:
        stop_test_cloud(running)


@pytest.fixture(scope="session")
def provisioned(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """A whole lab, steps 1-13, on a cloud of its own: restored from the clone's checkpoint of it, else built and
    saved as one (tests/helpers/lab_checkpoint.py); torn down and stopped at the end of the session."""
    from labkit import teardown

    home = tmp_path_factory.mktemp("lab-home")
    try:
        lab, origin = lab_checkpoint.whole_lab(home)
        request.config.stash[LAB_ORIGIN] = str(origin)
        yield ProvisionedLab(lab, home)
        teardown.delete_everything(lab)
    finally:
        status = control.cloud_status(home)
        control.stop_cloud(home)
        if status.cloud_id:
            assert not find_marked(CLOUD_MARKER, status.cloud_id)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say how the session's whole lab came to be (built and saved, or restored), when a test used it."""
    if LAB_ORIGIN in config.stash:
        terminalreporter.write_line(config.stash[LAB_ORIGIN])
