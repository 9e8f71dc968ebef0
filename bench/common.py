"""Shared set-up for the benchmarks: a throwaway local cloud on a free port (free ports, the database server behind
an endpoint and the Lambda trust policy are the tests' own helpers, tests/helpers/)."""
from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labkit.localcloud import control
from tests.helpers import db_server_port, free_port
from tests.helpers.lambdas import LAMBDA_TRUST

__all__ = ["LAMBDA_TRUST", "client", "control", "db_server_port", "free_port", "local_cloud", "mean", "percentile",
           "report", "scratch_home"]


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


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def p50(call, n: int = 300) -> float:
    """The median of ``n`` timed calls of ``call``, in ms (after one untimed call that warms it)."""
    call()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 50)


def report(name: str, value: float, unit: str, target: str = "") -> None:
    print(f"{name:<48} {value:>10.2f} {unit:<6} {target}")


mean = statistics.mean
