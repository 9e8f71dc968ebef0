"""What tests share: free ports, one polling helper, zips, HTTP probes, a local cloud of a test's own.

Helpers live here (and in the domain modules beside this one: ``ec2``, ``lambdas``, ``network``, ``rds``, ``iam``),
never in a ``conftest.py`` (fixtures only) nor in a test module (tests/unit/test_test_imports.py checks it).
Wait with a botocore waiter where AWS has one (``instance_running``, ``db_instance_available``,
``function_active_v2``, ``command_executed``), else with :func:`until`.
"""
from __future__ import annotations

import inspect
import io
import json
import socket
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3

from labkit.localcloud import control
from labkit.localcloud.procs import CLOUD_MARKER, find_marked

T = TypeVar("T")
REGION = "us-east-1"
# The folders Jupyter, IPython and matplotlib write to: each test session gets its own (tests/conftest.py).
USER_DIRS = {"JUPYTER_DATA_DIR": "jupyter-data", "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
             "JUPYTER_CONFIG_DIR": "jupyter-config", "IPYTHONDIR": "ipython", "MPLCONFIGDIR": "matplotlib"}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (tests never use fixed ports)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def until(predicate: Callable[[], T], seconds: float = 10, interval: float = 0.1, *,
          ignoring: tuple[type[BaseException], ...] = (), message: str | Callable[[], str] | None = None) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy, and return that.

    Errors of the ``ignoring`` types count as "not yet". After ``seconds`` it raises AssertionError naming what
    was awaited (``message``, which may be a callable read at that moment, else the predicate's source) and the
    last answer or error.
    """
    deadline = time.monotonic() + seconds
    while True:
        error: BaseException | None = None
        try:
            value = predicate()
        except ignoring as exc:
            value, error = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message() if callable(message) else message or _source(predicate)
            last = f"last error: {error!r}" if error is not None else f"last answer: {value!r}"
            raise AssertionError(f"{what}: not reached within {seconds:g} s ({last})") from error
        time.sleep(interval)


def _source(predicate: Callable[..., Any]) -> str:
    name = getattr(predicate, "__qualname__", repr(predicate))
    if name.endswith("<lambda>"):
        try:
            return inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            pass
    return name


def make_zip(files: dict[str, str | bytes]) -> bytes:
    """A zip archive in memory (Lambda code, layers) holding ``files`` (name -> content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def http_status(url: str, timeout: float = 0.75) -> int | str:
    """A GET's status, or why there is none ("timed out", else the error's name).

    A dropped path always times out, so checks that expect a drop keep the short timeout; checks that expect an
    answer give the forwarder and the server time on a busy machine (5 or 10 s)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.URLError as exc:
        return "timed out" if isinstance(exc.reason, socket.timeout) else type(exc.reason).__name__
    except TimeoutError:
        return "timed out"


def open_url(url: str, method: str = "GET", data: bytes | None = None,
             content_type: str = "text/plain") -> tuple[int, bytes]:
    """What a browser gets from ``url`` (no AWS library): the status and body, errors included (an upload says
    what it sends)."""
    headers = {"Content-Type": content_type} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclass
class Cloud:
    """A running local cloud and its LABKIT_HOME."""

    home: Path
    status: control.CloudStatus

    @property
    def endpoint(self) -> str:
        return self.status.endpoint

    def client(self, service: str, **kwargs: Any) -> Any:
        """A client signed with the cloud's admin keys (unless the test passes keys of its own)."""
        keys = {} if "aws_access_key_id" in kwargs else control.admin_credentials(self.home)
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **keys, **kwargs)

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """A call to the cloud's own API (``/_labkit/...``), with the owner's token."""
        return control.cloud_request(method, path, body, home=self.home)


def start_test_cloud(home: Path, **options: Any) -> Cloud:
    """A local cloud on a free port in ``home`` (``options``: more of control.start_cloud's)."""
    return Cloud(home, control.start_cloud(port=free_port(), home=home, **options))


def stop_test_cloud(cloud: Cloud) -> None:
    """Stop the cloud and assert that nothing it started is left running."""
    control.stop_cloud(cloud.home)
    leftovers = find_marked(CLOUD_MARKER, cloud.status.cloud_id)
    assert not leftovers, f"processes left running after cloud stop: {leftovers}"


def db_server_port(home: Path, address: str, port: int) -> int:
    """The port of the database server process behind the RDS endpoint ``address``:``port`` (the cloud's wiring:
    the endpoint itself is private)."""
    services = control.cloud_request("GET", "/_labkit/health", home=home)["services"]
    identifier = next(k for k, v in services["network"]["databases"].items() if v == f"{address}:{port}")
    return services["rds"]["instances"][identifier]["port"]


@dataclass
class ProvisionedLab:
    """A whole lab (built through its steps or restored from a checkpoint of them), and its LABKIT_HOME."""

    lab: Any
    home: Path

    def db_connection(self) -> Any:
        """A connection to the local RDS server behind the network model (tests only: the database is private,
        so its advertised endpoint drops your computer's connections, as on AWS)."""
        import pymysql

        secret = json.loads(self.lab.client("secretsmanager").get_secret_value(SecretId="order-db-secret")["SecretString"])
        port = db_server_port(self.home, secret["host"], secret["port"])
        return pymysql.connect(host="127.0.0.1", port=port, user=secret["username"],
                               password=secret["password"], database=secret["dbname"], autocommit=True)
