"""One lab clock: everything the local cloud runs for a lab lives on it; the daemon and your computer do not.

On AWS there is one clock. Locally the lab's clock is real time plus an offset that only grows:
``labkit cloud clock advance --hours 24`` adds to it, and it ticks normally in between. Who reads it:

* **Every process the cloud starts for the lab** — Lambda workers, the EC2 instance's processes (user
  data, SSM commands, systemd units, the Flask app and whatever they start), each RDS server (``NOW()``,
  ``CURRENT_TIMESTAMP``, column defaults, InnoDB included) — through Debian's **libfaketime**, preloaded
  by :meth:`LabClock.process_env` (the launch hook of :class:`ClockService`; ``LD_PRELOAD``; entries others add, such as the network hook, are kept).
  It intercepts ``clock_gettime``/``gettimeofday``/``time`` (Python's ``time.time`` and ``datetime.now``,
  MariaDB's ``my_hrtime``, ``date``) and adds the offset written in the lab's file
  ``<home>/clock/faketimerc`` (``FAKETIME_TIMESTAMP_FILE``, content ``+<seconds>``; no ``FAKETIME``
  variable, which would take precedence over the file). ``FAKETIME_CACHE_DURATION=0`` makes each process
  re-read the file once per real second, so :meth:`LabClock.advance` writes the file and returns once a new
  second has begun: from then on every running process — warm workers, the app, the database — reads the
  new time without a restart (measured here: a clock read costs ~7 µs with this cache, ~60 µs when the file
  is read on every call, ``FAKETIME_NO_CACHE=1``, and ~1 µs without libfaketime).
* **Only wall-clock time moves.** ``FAKETIME_DONT_FAKE_MONOTONIC=1`` keeps ``CLOCK_MONOTONIC`` real, so
  timeouts, ``sleep`` and thread waits measure real seconds. libfaketime 0.9.10 (Debian 12) still rewrites an
  absolute monotonic ``clock_nanosleep`` (Python 3.11's ``time.sleep``) into an invalid request, and ends
  every ``pthread_cond_timedwait`` on a monotonic condition variable at once (CPython's GIL waits so: threads
  spun on it, and the app spent ~25 ms of CPU per order instead of ~1); the tiny ``faketime_sleep.c``,
  preloaded just before it, sends both straight to glibc (upstream's later fixes: wolfcw/libfaketime#426,
  and a2e406c/75e130c of 2025). The lab's processes share one libfaketime semaphore and
  shared-memory segment (``FAKETIME_SHARED``), created here and removed when the clock stops, so processes
  the cloud kills leave nothing behind in ``/dev/shm``.
* **The daemon stays on real time** (it enforces Lambda timeouts in its Runtime API with ``time.monotonic``)
  and stamps what it records for the lab with :meth:`LabClock.now`: EventBridge event ``time``, CloudWatch Logs
  timestamps of the START/END/REPORT lines and of everything a function prints, S3 ``LastModified``, the
  ``Lambda-Runtime-Deadline-Ms`` a worker computes its remaining time from, SSM command times, and the
  ``Expiration`` the instance metadata service shows (the instance's botocore compares it with its own clock;
  the cloud keeps checking the session's real expiry in real time, so an advance expires no credentials).
* **Your computer keeps real time**: the notebook kernel, labkit and boto3 signing. Requests signed from
  inside the lab carry lab time and are accepted as well (the local cloud does not reject skewed clocks).

``labkit cloud clock`` shows the lab time and the offset; a ``labkit cloud reset`` starts at real time again.
"""
from __future__ import annotations

import ctypes
import datetime as dt
import logging
import mmap
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit.localcloud.control import PROJECT_ROOT
from labkit.localcloud.core.patches import find
from labkit.localcloud.core.services import CloudContext, Launch, Route, Service
from labkit.localcloud.procs import faketime_shared_files, faketime_shared_names

log = logging.getLogger("labkit.localcloud.clock")
UTC = dt.timezone.utc
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime", "/usr/lib/faketime",
                "/usr/local/lib/faketime", "/usr/lib64/faketime")
SLEEP_FIX = PROJECT_ROOT / ".cache" / "faketime" / "labkit_faketime_sleep.so"
# libfaketime's shared segment (struct ft_shared_s): ticks, file index, then the real, monotonic and raw
# monotonic start times as timespecs, whose tv_nsec = -1 means "not set yet".
SHARED_LAYOUT = struct.Struct("=QQ" + "qq" * 4)
SHARED_INITIAL = SHARED_LAYOUT.pack(0, 0, 0, -1, 0, -1, 0, -1, 0, -1)


def find_libfaketime() -> Path | None:
    """libfaketime's thread-safe library (``LABKIT_LIBFAKETIME`` or the distribution's folder)."""
    configured = os.environ.get("LABKIT_LIBFAKETIME")
    candidates = [Path(configured)] if configured else [Path(d) / "libfaketimeMT.so.1" for d in LIBRARY_DIRS]
    return next((p for p in candidates if p.is_file()), None)


class ClockUnavailable(ValueError):
    """The lab clock cannot move because libfaketime (or its companion) is missing."""


class LabClock:
    """Real UTC time plus an offset that only ever grows, shared with the lab's processes through a file."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.file = folder / "faketimerc"
        self.offset = 0.0
        self._name = name
        self.library = find_libfaketime()
        self.sleep_fix = SLEEP_FIX if SLEEP_FIX.is_file() else None
        self._sem, self._shm = faketime_shared_names(name)
        self.shared = False
        folder.mkdir(parents=True, exist_ok=True)
        self._write()
        if self.available:
            self.shared = self._create_shared()

    @property
    def available(self) -> bool:
        return self.library is not None and self.sleep_fix is not None

    # -- reading and moving the clock ---------------------------------------------------------------
    def timestamp(self) -> float:
        """Lab time as seconds since the epoch."""
        return time.time() + self.offset

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp(), UTC)

    def info(self) -> dict[str, Any]:
        return {"now": self.now().isoformat(), "offset_seconds": self.offset,
                "faketime": str(self.library) if self.library else None}

    def advance(self, seconds: float, settle: bool = True) -> None:
        """Move the clock forward; return once every running lab process reads the new time (``settle``; without
        it at once: the daemon's own stamps move now, the processes' clocks within a second)."""
        if seconds < 0:
            raise ValueError("the lab clock only moves forward")
        if seconds and not self.available:
            raise ClockUnavailable(
                "the lab clock cannot move: libfaketime or its companion library is missing "
                f"(looked for {', '.join(LIBRARY_DIRS)} and {SLEEP_FIX}); run `make setup`")
        self.offset += seconds
        if settle:
            self._publish()
        else:
            self._write()

    def reset(self) -> None:
        """Back to real time (a fresh ``labkit cloud reset``)."""
        self.offset = 0.0
        if self.available and not self.shared:
            self.shared = self._create_shared()
        self._publish()

    def _publish(self) -> None:
        self._write()
        # Each process re-reads the file at its first clock read in a real second after the one of its last
        # read (cache duration 0); a read before the write finished was in this second or an earlier one.
        written = time.time()
        time.sleep(max(0.0, int(written) + 1.02 - time.time()))

    def publish_now(self) -> None:
        """Write the offset for processes not started yet (no running process to wait for)."""
        self._write()

    def _write(self) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(f"+{self.offset:.6f}\n")
        tmp.replace(self.file)  # a reader sees the old file or the new one, never half of it

    # -- the processes' side --------------------------------------------------------------------------
    def process_env(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` for a process of the lab: libfaketime (after the sleep fix) in front of LD_PRELOAD."""
        if not self.available:
            return env
        ours = [str(self.sleep_fix), str(self.library)]
        others = [e for e in env.get("LD_PRELOAD", "").replace(" ", ":").split(":") if e and e not in ours]
        extra = {"LD_PRELOAD": ":".join(ours + others), "FAKETIME_TIMESTAMP_FILE": str(self.file),
                 "FAKETIME_CACHE_DURATION": "0", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        if self.shared:
            extra["FAKETIME_SHARED"] = f"{self._sem} {self._shm}"
        return {**{k: v for k, v in env.items() if k != "FAKETIME"}, **extra}

    def _create_shared(self) -> bool:
        """The semaphore and segment libfaketime would otherwise create per process (and leak on SIGKILL)."""
        self._remove_shared()
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.sem_open.restype = ctypes.c_void_p
            sem = libc.sem_open(self._sem.encode(), ctypes.c_int(os.O_CREAT | os.O_EXCL), ctypes.c_uint(0o600),
                                ctypes.c_uint(1))
            if not sem or sem == ctypes.c_void_p(-1).value:
                raise OSError(ctypes.get_errno(), "sem_open failed")
            libc.sem_close(ctypes.c_void_p(sem))
            fd = os.open(faketime_shared_files(self._name)[1], os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
            try:
                os.ftruncate(fd, mmap.PAGESIZE)
                os.write(fd, SHARED_INITIAL)
            finally:
                os.close(fd)
            return True
        except (OSError, AttributeError) as exc:
            log.warning("libfaketime will use per-process shared memory: %s", exc)
            self._remove_shared()
            return False

    def _remove_shared(self) -> None:
        for path in faketime_shared_files(self._name):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Remove the shared semaphore and segment (the lab's processes have ended); ``reset`` makes new ones."""
        self._remove_shared()
        self.shared = False


class ClockService(Service):
    """The lab clock as a service of the daemon: every process the cloud starts lives on it (its launch hook),
    every service reads it (``ctx.services.require(ClockService).clock``), ``/_labkit/clock`` shows it. The
    daemon registers it first, so it stops last, once every process that read its shared segment has ended."""

    name = "clock"

    def __init__(self, ctx: CloudContext) -> None:
        self.clock = LabClock(ctx.service_dir("clock"), ctx.cloud_id)

    def save_state(self) -> dict[str, Any]:
        """The offset: lab time goes on while the cloud is stopped (real time + offset), as time goes on on AWS."""
        return {"offset": self.clock.offset}

    def load_state(self, saved: dict[str, Any] | None, restored: bool) -> None:
        """The saved offset, written before any process of the lab starts."""
        if saved and restored:
            self.clock.offset = float(saved.get("offset", 0.0))
            self.clock.publish_now()

    def routes(self) -> list[tuple[str, str, Route]]:
        return [("GET", "/_labkit/clock", lambda _r: self.clock.info())]

    def summary(self) -> dict[str, Any]:
        return self.clock.info()

    def on_launch(self, launch: Launch) -> None:
        """Every process of the lab lives on the lab clock (libfaketime, see above)."""
        launch.env.update(self.clock.process_env(launch.env))

    def stop_all(self) -> None:
        self.clock.close()

    def after_reset(self) -> None:
        self.clock.reset()


def lab_utcnow(original: Callable[[], dt.datetime]) -> Callable[[], dt.datetime]:
    """A replacement of a moto ``utcnow()`` (naive UTC) that reads the lab clock (for a :class:`Patch`)."""
    def wrapper() -> dt.datetime:
        service = find(ClockService)
        return service.clock.now().replace(tzinfo=None) if service is not None else original()
    return wrapper
