"""Child processes of the local cloud, found by an environment marker so that none is ever left behind.

Every process the daemon starts (database servers, Lambda workers, EC2 sandboxes and whatever they
start in turn) carries ``LABKIT_CLOUD_ID=<id>`` in its environment; EC2 processes also carry
``LABKIT_INSTANCE_ID``. Stopping looks through every process's environment (psutil), so
double-forked daemons and ``nohup`` jobs are found as reliably as direct children.
"""
from __future__ import annotations

import os
from collections.abc import Callable

import psutil
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

CLOUD_MARKER = "LABKIT_CLOUD_ID"
INSTANCE_MARKER = "LABKIT_INSTANCE_ID"


def _marked(key: str, value: str) -> list[psutil.Process]:
    me = os.getpid()
    found = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(key) == value and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # gone meanwhile, or another account's (it cannot carry our marker)
    return found


def find_marked(key: str, value: str) -> list[int]:
    """Return the pids of live processes whose environment holds ``key=value``."""
    return [proc.pid for proc in _marked(key, value)]


def kill_marked(key: str, value: str, grace: float = 3.0) -> int:
    """SIGTERM every process marked ``key=value``, SIGKILL what is left after ``grace`` seconds."""
    procs = _marked(key, value)
    for proc in procs:
        _quietly(proc.terminate)
    # polled rather than psutil.wait_procs: a zombie whose parent has not reaped it yet counts as gone
    if not _until_none_marked(key, value, grace):
        for proc in _marked(key, value):  # also those started meanwhile (a supervisor restarting its child)
            _quietly(proc.kill)
        _until_none_marked(key, value, 2.0)
    return len(procs)


def _until_none_marked(key: str, value: str, seconds: float) -> bool:
    """Wait up to ``seconds`` until no live process is marked ``key=value``; False if some still are."""
    try:
        Retrying(retry=retry_if_result(bool), stop=stop_after_delay(seconds), wait=wait_fixed(0.05))(
            _marked, key, value)
    except RetryError:
        return False
    return True


def wait_gone(pid: int, seconds: float) -> bool:
    """Wait up to ``seconds`` until ``pid`` is gone (or a zombie); False if it still runs."""
    try:
        Retrying(retry=retry_if_result(bool), stop=stop_after_delay(seconds), wait=wait_fixed(0.05))(pid_alive, pid)
    except RetryError:
        return False
    return True


def _quietly(action: Callable[[], None]) -> None:
    try:
        action()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass


def pid_alive(pid: int) -> bool:
    """True when ``pid`` names a live, non-zombie process."""
    if pid <= 0:
        return False
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)  # (psutil ships no type hints)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
