"""Child processes of the local cloud, found by an environment marker so that none is ever left behind.

Every process the daemon starts (database servers, Lambda workers, EC2 sandboxes and whatever they
start in turn) carries ``LABKIT_CLOUD_ID=<id>`` in its environment; EC2 processes also carry
``LABKIT_INSTANCE_ID``. Stopping reads ``/proc/*/environ``, so double-forked daemons and
``nohup`` jobs are found as reliably as direct children.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

CLOUD_MARKER = "LABKIT_CLOUD_ID"
INSTANCE_MARKER = "LABKIT_INSTANCE_ID"


def _environ_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def find_marked(key: str, value: str) -> list[int]:
    """Return the pids of live processes whose environment holds ``key=value``."""
    me = os.getpid()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == me:
            continue
        if _environ_of(pid).get(key) == value and not _is_zombie(pid):
            pids.append(pid)
    return pids


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def kill_marked(key: str, value: str, grace: float = 3.0) -> int:
    """SIGTERM every process marked ``key=value``, SIGKILL what is left after ``grace`` seconds."""
    pids = find_marked(key, value)
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not find_marked(key, value):
            return len(pids)
        time.sleep(0.05)
    for pid in find_marked(key, value):
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while find_marked(key, value) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(pids)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def pid_alive(pid: int) -> bool:
    """True when ``pid`` names a live, non-zombie process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)
