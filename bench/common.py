"""Shared set-up for the benchmarks: a throwaway local cloud on a free port."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import sys
import tempfile
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labkit.localcloud import control


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LAMBDA_TRUST = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": '
                '"lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}')


@contextlib.contextmanager
def scratch_home(prefix: str = "labkit-bench-"):
    """A LABKIT_HOME for one benchmark run, removed afterwards (the cloud must be stopped inside it)."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def local_cloud(iam: str = "on"):
    """A throwaway cloud; ``iam="off"`` starts it without authorization (to measure what IAM costs)."""
    with scratch_home() as home:
        with _iam_setting(iam):
            status = control.start_cloud(port=free_port(), home=home)
        try:
            yield status
        finally:
            control.stop_cloud(home)


@contextlib.contextmanager
def _iam_setting(iam: str):
    """LABKIT_IAM for the daemon about to start, restored once it has started."""
    previous = os.environ.get("LABKIT_IAM")
    os.environ["LABKIT_IAM"] = iam
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("LABKIT_IAM", None)
        else:
            os.environ["LABKIT_IAM"] = previous


def client(status: control.CloudStatus, service: str, **kwargs):
    return boto3.client(service, endpoint_url=status.endpoint, region_name="us-east-1",
                        **control.admin_credentials(status.home), **kwargs)


def db_server_port(home: Path, address: str, port: int) -> int:
    """The database server behind an RDS endpoint (the cloud's wiring: the endpoint itself is private)."""
    services = control.cloud_request("GET", "/_labkit/health", home=home)["services"]
    identifier = next(k for k, v in services["network"]["databases"].items() if v == f"{address}:{port}")
    return services["rds"]["instances"][identifier]["port"]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def report(name: str, value: float, unit: str, target: str = "") -> None:
    print(f"{name:<48} {value:>10.2f} {unit:<6} {target}")


mean = statistics.mean
