"""Child processes of the local cloud, found by an environment marker so that none is ever left behind.

Every process the daemon starts (database servers, Lambda workers, EC2 sandboxes and whatever they
start in turn) carries ``LABKIT_CLOUD_ID=<id>`` and ``LABKIT_CLOUD_HOME=<the lab's folder>`` in its environment;
EC2 processes also carry ``LABKIT_INSTANCE_ID``. Stopping looks through every process's environment (psutil), so
double-forked daemons and ``nohup`` jobs are found as reliably as direct children. A daemon that died (``kill -9``,
a crash, a power cut while it ran) leaves its processes and the lab clock's shared memory behind:
:func:`end_leftovers` finds them by its cloud id and the lab's folder, before the next daemon of the lab starts.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import psutil
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

CLOUD_MARKER = "LABKIT_CLOUD_ID"
HOME_MARKER = "LABKIT_CLOUD_HOME"
INSTANCE_MARKER = "LABKIT_INSTANCE_ID"
SHARED_MEMORY = "/dev/shm"


def faketime_shared_names(cloud_id: str) -> tuple[str, str]:
    """The names of the lab clock's libfaketime semaphore and segment of the cloud ``cloud_id`` (POSIX names)."""
    tag = "".join(c for c in cloud_id if c.isalnum())[:24]
    return f"/labkit_ft_sem_{tag}", f"/labkit_ft_shm_{tag}"


def faketime_shared_files(cloud_id: str) -> tuple[Path, Path]:
    """Where the semaphore and the segment of :func:`faketime_shared_names` live."""
    sem, shm = faketime_shared_names(cloud_id)
    return Path(SHARED_MEMORY) / f"sem.{sem[1:]}", Path(SHARED_MEMORY + shm)


def _marked(key: str, value: str, *more: tuple[str, str], within: tuple[str, str] | None = None) -> list[psutil.Process]:
    """Live processes marked with any of ``key=value`` and ``more`` (and, if given, also with ``within``)."""
    me = os.getpid()
    wanted = [(key, value), *more]
    found = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            environ = proc.environ()
            if within is not None and environ.get(within[0]) != within[1]:
                continue
            if any(environ.get(k) == v for k, v in wanted) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # gone meanwhile, or another account's (it cannot carry our marker)
    return found


def end_leftovers(cloud_id: str | None, home: Path) -> int:
    """End what a daemon of ``home`` that is gone left running (every process marked with its cloud id or the lab's
    folder: database servers, workers, an instance's app) and remove its lab clock's shared memory, so nothing holds
    the lab's addresses or runs twice when the lab starts again. Returns how many processes were ended."""
    pairs = [(HOME_MARKER, str(home)), *([(CLOUD_MARKER, cloud_id)] if cloud_id else [])]
    procs = _marked(*pairs[0], *pairs[1:])
    for proc in procs:
        _quietly(proc.kill)  # a crashed lab's processes: nothing of theirs is kept but what is on disk
    if procs:
        Retrying(retry=retry_if_result(bool), stop=stop_after_delay(5.0), wait=wait_fixed(0.05))(
            _marked, *pairs[0], *pairs[1:])
    for path in faketime_shared_files(cloud_id) if cloud_id else ():
        path.unlink(missing_ok=True)
    return len(procs)


def find_marked(key: str, value: str) -> list[int]:
    """Return the pids of live processes whose environment holds ``key=value``."""
    return [proc.pid for proc in _marked(key, value)]


def kill_marked(key: str, value: str, grace: float = 3.0, within: tuple[str, str] | None = None) -> int:
    """SIGTERM every process marked ``key=value`` (and ``within``: an instance id is only unique within its lab,
    since a lab restored from a checkpoint keeps its ids), SIGKILL what is left after ``grace`` seconds."""
    procs = _marked(key, value, within=within)
    for proc in procs:
        _quietly(proc.terminate)
    # polled rather than psutil.wait_procs: a zombie whose parent has not reaped it yet counts as gone
    if not _until_none_marked(key, value, grace, within):
        for proc in _marked(key, value, within=within):  # also those started meanwhile (a supervisor restarting)
            _quietly(proc.kill)
        _until_none_marked(key, value, 2.0, within)
    return len(procs)


def _until_none_marked(key: str, value: str, seconds: float, within: tuple[str, str] | None = None) -> bool:
    """Wait up to ``seconds`` until no live process is marked ``key=value``; False if some still are."""
    try:
        Retrying(retry=retry_if_result(bool), stop=stop_after_delay(seconds), wait=wait_fixed(0.05))(
            lambda: _marked(key, value, within=within))
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
