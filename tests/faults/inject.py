"""Faults on purpose: kill or stall one real process of the local cloud, as a part fails on AWS.

For the fault tests, the fault benchmark and the troubleshooting notebook. Each function finds the process
by the cloud's markers (never by name alone), signals it, and returns its pid:

- ``kill_database`` / ``stall_database``: the RDS instance's server (SIGKILL; SIGSTOP then SIGCONT),
- ``kill_function_workers``: the warm awslambdaric workers of a function (mid-invoke when busy),
- ``kill_app``: the instance's web server, the unit's one process (systemd starts it again after RestartSec).

``injector`` names these faults as the fault tests and the benchmark's scenarios do.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from labkit.localcloud import control
from labkit.localcloud.procs import CLOUD_MARKER, find_marked
from labkit.lookups import describe_instance
from labkit.names import VALIDATOR_FUNCTION, db_instance_id
from tests.helpers import until

SCENARIOS = ("database killed", "database stalled", "validator worker killed", "app process killed")
STALL_SECONDS = 38  # past the validator's 30 s timeout


def _health(home: Path | None) -> dict:
    return control.cloud_request("GET", "/_labkit/health", home=home)


def database_pid(identifier: str, home: Path | None = None) -> int:
    instance = _health(home)["services"]["rds"]["instances"].get(identifier)
    if not instance or not instance.get("pid"):
        raise LookupError(f"no database server runs for DB instance {identifier!r}")
    return int(instance["pid"])


def kill_database(identifier: str, home: Path | None = None) -> int:
    """SIGKILL the DB instance's server, as an engine crash."""
    pid = database_pid(identifier, home)
    os.kill(pid, signal.SIGKILL)
    return pid


def stall_database(identifier: str, seconds: float, home: Path | None = None) -> threading.Thread:
    """Freeze the server (SIGSTOP) for ``seconds``, then let it go on (SIGCONT); returns the thread doing it."""
    pid = database_pid(identifier, home)
    os.kill(pid, signal.SIGSTOP)
    timer = threading.Timer(seconds, lambda: os.kill(pid, signal.SIGCONT))
    timer.daemon = True
    timer.start()
    return timer


def function_worker_pids(function: str, home: Path | None = None) -> list[int]:
    cloud_id = control.cloud_status(home).cloud_id
    return [pid for pid in find_marked(CLOUD_MARKER, cloud_id or "")
            if _environ(pid).get("AWS_LAMBDA_FUNCTION_NAME") == function and "awslambdaric" in _cmdline(pid)]


def kill_function_workers(function: str, home: Path | None = None) -> list[int]:
    """SIGKILL every warm worker of ``function``: invocations in flight end in Runtime.ExitError."""
    pids = function_worker_pids(function, home)
    for pid in pids:
        _kill(pid)
    return pids


def app_main_pid(instance_id: str, unit: str = "orders-app.service", home: Path | None = None) -> int:
    """The unit's main process on the instance, as its systemd records it."""
    state = Path(control.cloud_status(home).home) / "ec2" / instance_id / "run" / "systemd" / f"{unit}.json"
    pid = json.loads(state.read_text()).get("main_pid") if state.exists() else None
    if not pid:
        raise LookupError(f"{unit} has no main process on {instance_id}")
    return int(pid)


def kill_app(instance_id: str, home: Path | None = None) -> int:
    """SIGKILL the web server (one process, the unit's main process), as a crash; systemd restarts it."""
    pid = app_main_pid(instance_id, home=home)
    os.kill(pid, signal.SIGKILL)
    return pid


def injector(kind: str, lab: Any, home: Path, killed: list[int] | None = None) -> Callable[[], float]:
    """The fault ``kind`` (one of SCENARIOS) for ``lab``, to call once: it injects the fault and returns when the
    fault began, as ``time.monotonic()`` (a stall begins to matter when it ends). The app's killed pids go into
    ``killed``."""
    if kind not in SCENARIOS:
        raise ValueError(f"unknown fault {kind!r}: one of {', '.join(SCENARIOS)}")
    killed = [] if killed is None else killed

    def inject() -> float:
        if kind == "database killed":
            kill_database(db_instance_id(lab), home)
        elif kind == "database stalled":
            stall_database(db_instance_id(lab), STALL_SECONDS, home)
            return time.monotonic() + STALL_SECONDS
        elif kind == "validator worker killed":
            until(lambda: kill_function_workers(VALIDATOR_FUNCTION, home), 10, 0.05,
                  message=f"a warm {VALIDATOR_FUNCTION} worker killed")
        elif kind == "app process killed":  # one hypercorn process: systemd starts it again after RestartSec
            killed.append(kill_app(describe_instance(lab)["InstanceId"], home))
        return time.monotonic()
    return inject


def _environ(pid: int) -> dict[str, str]:
    try:
        return psutil.Process(pid).environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return {}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
