"""Timed waits under the lab clock (libfaketime and its companion, ``core/faketime_sleep.c``), in a real process.

Only wall-clock time moves on the lab clock: a wait on CLOCK_MONOTONIC must last as long as asked whatever the
offset, and a wait until a CLOCK_REALTIME instant is an instant of lab time. libfaketime 0.9.10 ended every
monotonic condition-variable wait at once (CPython's GIL waits so: a threaded server spun on the GIL), and
turned absolute monotonic sleeps into EINVAL; the companion sends both straight to glibc.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.localcloud.core.clock import LabClock

WAITS = r"""
import ctypes, json, os, time
libc = ctypes.CDLL(None, use_errno=True)  # symbols as the process resolves them: the preloaded ones first
CLOCK_REALTIME, CLOCK_MONOTONIC, ETIMEDOUT = 0, 1, 110

class timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

def wait_on(clock, seconds):
    # A condition variable on ``clock`` (room for any glibc's layout), waited on until now + seconds
    attr, cond, mutex = (ctypes.create_string_buffer(128) for _ in range(3))
    libc.pthread_condattr_init(attr)
    libc.pthread_condattr_setclock(attr, clock)
    libc.pthread_cond_init(cond, attr)
    libc.pthread_mutex_init(mutex, None)
    now = timespec()
    libc.clock_gettime(clock, ctypes.byref(now))  # the lab's time on CLOCK_REALTIME, as the caller sees it
    total = now.tv_sec * 10**9 + now.tv_nsec + int(seconds * 1e9)
    deadline = timespec(total // 10**9, total % 10**9)
    libc.pthread_mutex_lock(mutex)
    began = time.monotonic()
    code = libc.pthread_cond_timedwait(cond, mutex, ctypes.byref(deadline))
    waited = time.monotonic() - began
    libc.pthread_mutex_unlock(mutex)
    libc.pthread_cond_destroy(cond)
    return {"code": code, "waited": waited}

began = time.monotonic()
time.sleep(0.2)  # Python 3.11: an absolute clock_nanosleep on CLOCK_MONOTONIC
print(json.dumps({"offset": time.time() - float(os.environ["REAL_NOW"]),
                  "monotonic": wait_on(CLOCK_MONOTONIC, 0.2), "realtime": wait_on(CLOCK_REALTIME, 0.2),
                  "sleep": time.monotonic() - began}))
"""


@pytest.fixture
def clock(tmp_path: Path):
    clock = LabClock(tmp_path / "clock", f"waits{os.getpid()}")
    if not clock.available:
        pytest.skip("libfaketime or its companion is not built (make setup)")
    yield clock
    clock.close()


def _run(clock: LabClock) -> dict:
    env = clock.process_env({**os.environ, "REAL_NOW": repr(time.time())})
    done = subprocess.run([sys.executable, "-c", WAITS], check=False, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("offset_days", [0, 2])
def test_timed_waits_last_as_long_as_asked_on_the_lab_clock(clock, offset_days):
    clock.advance(offset_days * 86400)
    result = _run(clock)
    assert abs(result["offset"] - offset_days * 86400) < 30, "the process reads lab time"
    for clock_name in ("monotonic", "realtime"):
        wait = result[clock_name]
        assert wait["code"] == 110, f"a {clock_name} wait that nobody signals ends in ETIMEDOUT: {wait}"
        # Lower bounds only (a busy machine may wake a waiter late): the wait did wait, not end at once
        # (libfaketime 0.9.10's monotonic condition variables) nor last the clock's offset (days).
        assert 0.15 <= wait["waited"] < 30, f"a 0.2 s {clock_name} wait lasted {wait['waited']:.3f} s"
    assert 0.15 <= result["sleep"] < 30
