"""Shared fixtures: a real local cloud on a free port in a temporary LABKIT_HOME, stopped at the end."""
from __future__ import annotations

import atexit
import io
import os
import shutil
import socket
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from labkit.localcloud import control
from labkit.localcloud.procs import CLOUD_MARKER, find_marked

# No test may reach real AWS: dummy credentials (the local cloud refuses them too), no profile, no instance metadata.
# Tests that talk to a local cloud sign as its admin user (``Cloud.client``, ``use_admin_keys``).
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_var, None)
os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})
REGION = "us-east-1"

# Nor may a test write into the user's home: `labkit run` signs what it executed in Jupyter's signature store, and
# the kernels it starts keep IPython, Jupyter and matplotlib files there. Each test session (and every kernel,
# notebook and JupyterLab it starts, which inherit the environment) gets folders of its own, removed at exit.
USER_DIRS = {"JUPYTER_DATA_DIR": "jupyter-data", "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
             "JUPYTER_CONFIG_DIR": "jupyter-config", "IPYTHONDIR": "ipython", "MPLCONFIGDIR": "matplotlib"}
_user_dirs = Path(tempfile.mkdtemp(prefix="labkit-tests-user-"))
os.environ.update({name: str(_user_dirs / folder) for name, folder in USER_DIRS.items()})
(_user_dirs / "matplotlib").mkdir()
for _fonts in (Path.home() / ".cache" / "matplotlib").glob("fontlist-*.json"):  # read, not written: saves its
    shutil.copy(_fonts, _user_dirs / "matplotlib")  # kernels rebuilding the font list (5 s)
atexit.register(shutil.rmtree, _user_dirs, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_zip(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@dataclass
class Cloud:
    home: Path
    status: control.CloudStatus

    @property
    def endpoint(self) -> str:
        return self.status.endpoint

    def client(self, service: str, **kwargs):
        """A client signed with the cloud's admin keys (unless the test passes keys of its own)."""
        keys = {} if "aws_access_key_id" in kwargs else control.admin_credentials(self.home)
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **keys, **kwargs)

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        return control.cloud_request(method, path, body, home=self.home)


def start_test_cloud(home: Path) -> Cloud:
    return Cloud(home, control.start_cloud(port=free_port(), home=home))


def stop_test_cloud(cloud: Cloud) -> None:
    control.stop_cloud(cloud.home)
    leftovers = find_marked(CLOUD_MARKER, cloud.status.cloud_id)
    assert not leftovers, f"processes left running after cloud stop: {leftovers}"


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


@dataclass
class ProvisionedLab:
    lab: object
    home: Path

    def db_connection(self):
        """A connection to the local RDS server behind the network model (tests only: the database is private,
        so its advertised endpoint drops your computer's connections, as on AWS)."""
        import json

        import pymysql

        secret = json.loads(self.lab.client("secretsmanager").get_secret_value(SecretId="order-db-secret")["SecretString"])
        port = db_server_port(self.home, f"{secret['host']}:{secret['port']}")
        return pymysql.connect(host="127.0.0.1", port=port, user=secret["username"],
                               password=secret["password"], database=secret["dbname"], autocommit=True)


def db_server_port(home: Path, endpoint: str) -> int:
    """The port of the database server process behind an RDS endpoint ``address:port`` (the cloud's wiring)."""
    services = control.cloud_request("GET", "/_labkit/health", home=home)["services"]
    identifier = next(k for k, v in services["network"]["databases"].items() if v == endpoint)
    return services["rds"]["instances"][identifier]["port"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that tear the provisioned lab down run last, whatever order the paths were given in."""
    last = [item for item in items if item.get_closest_marker("tears_down_the_lab")]
    items[:] = [item for item in items if item not in last] + last


@pytest.fixture(scope="session")
def provisioned(tmp_path_factory: pytest.TempPathFactory):
    """A whole lab, steps 1-13, on a cloud of its own; torn down and stopped at the end of the session."""
    from labkit import Lab, teardown
    from labkit.steps import run_steps

    home = tmp_path_factory.mktemp("lab-home")
    lab = Lab(target="local", name="test-lab", cloud_port=free_port(), app_port=free_port(), home=home)
    try:
        run_steps(lab, 1, 13)
        yield ProvisionedLab(lab, home)
        teardown.delete_everything(lab)
    finally:
        status = control.cloud_status(home)
        control.stop_cloud(home)
        if status.cloud_id:
            assert not find_marked(CLOUD_MARKER, status.cloud_id)
