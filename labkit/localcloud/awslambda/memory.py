"""A function's ``MemorySize``, enforced and measured by the kernel as AWS's sandbox is.

On AWS the whole sandbox (runtime, function, its child processes) gets ``MemorySize``; past it the kernel's OOM
killer ends it with SIGKILL, the invocation fails with ``Runtime.OutOfMemory`` and the next one is a cold start.
The local cloud does the same with, in this order:

1. **a cgroup memory limit**, when the cloud can make one (:class:`CgroupLimits`): cgroup v2 (``memory.max``,
   ``memory.swap.max`` 0, ``memory.oom.group`` 1: the whole worker goes) or v1 (``memory.limit_in_bytes`` and
   ``memory.memsw.limit_in_bytes``; the cloud ends the whole worker when the kernel killed any of its processes).
   The worker is moved into its cgroup before its interpreter starts (``/bin/sh`` writes its pid, then ``exec``),
   so everything it maps is charged. Max Memory Used is the cgroup's peak (``memory.peak`` /
   ``memory.max_usage_in_bytes``).
2. **a watchdog** otherwise (a student's laptop without cgroup delegation): a thread samples the resident memory
   of the worker's process tree (``VmRSS``) every 10 ms while it works and SIGKILLs the process group past
   ``MemorySize``; Max Memory Used is the peak sample. A burst between two samples is bounded by ``RLIMIT_DATA``
   (:func:`data_limit_mb`: Linux counts the heap and private writable mappings), which Python turns into
   ``MemoryError``, reported as ``Runtime.OutOfMemory`` too.

Not ``RLIMIT_AS``: it limits *address space*, not memory. Every thread reserves an 8 MiB stack and glibc gives
threads 64 MiB malloc arenas, reserved, not used: a worker with boto3 and ten threads maps 789 MB while it uses
64 MB, and with ``RLIMIT_AS`` at 128 MB its tenth thread cannot start ("can't start new thread"), where AWS runs
such a function in 128 MB without complaint.
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

log = logging.getLogger("labkit.localcloud.lambda")
MiB = 1024 * 1024
SAMPLE_BUSY = 0.01  # the watchdog's period while the worker initialises or runs an invocation
SAMPLE_IDLE = 0.25
ENV = "LABKIT_LAMBDA_MEMORY"  # "cgroup" or "watchdog" forces one (a test, a machine whose cgroups misbehave)


def data_limit_mb(memory_mb: int) -> int:
    """The watchdog's backstop (``RLIMIT_DATA``): well above ``memory_mb``, since Linux counts each thread's
    reserved 8 MiB stack in it (a worker with boto3 and ten threads: 134 MB of data for 64 MB in use)."""
    return 2 * memory_mb + 256


class MemoryLimit:
    """One worker's limit: how its command runs, its peak, whether it was killed for memory."""

    mechanism = ""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.lock = threading.Lock()
        self._closed = False
        self._peak = 0
        self._oom = False

    def describe(self) -> str:
        """The line the function's log gets once: what enforces the limit on this machine."""
        raise NotImplementedError

    def command(self, argv: list[str]) -> list[str]:
        return argv

    def started(self, pid: int) -> None:
        """The worker's process ``pid`` is running (the watchdog begins)."""

    def busy(self, working: bool) -> None:
        """The worker initialises or runs an invocation (``working``), or waits for one."""

    def _read_peak_mb(self) -> int:
        raise NotImplementedError

    def _read_oom(self) -> bool:
        raise NotImplementedError

    def peak_mb(self) -> int:
        """The worker's peak memory so far, in whole MB (MemorySize when it was killed for memory)."""
        with self.lock:
            if not self._closed:
                self._peak = max(self._peak, self._read_peak_mb())
            return self.memory_mb if self._oom else min(self._peak, self.memory_mb)

    def out_of_memory(self) -> bool:
        """True once the kernel (or the watchdog) killed a process of the worker for its memory."""
        with self.lock:
            if not self._closed and not self._oom:
                self._oom = self._read_oom()
            return self._oom

    def backstop_hit(self) -> None:
        """The worker raised MemoryError at the backstop limit: it ran out of memory."""
        with self.lock:
            self._oom = True

    def close(self) -> None:
        """The worker has exited: keep the last readings, release what the limit holds."""
        self.peak_mb()
        self.out_of_memory()
        with self.lock:
            self._closed = True
            self._release()

    def _release(self) -> None:
        pass


# -- cgroups -----------------------------------------------------------------------------------------------------
class CgroupLimit(MemoryLimit):
    """A worker's own cgroup (v1 or v2), under the cloud's."""

    def __init__(self, memory_mb: int, path: Path, version: int) -> None:
        super().__init__(memory_mb)
        self.path, self.version = path, version
        self.mechanism = f"cgroup v{version}"
        path.mkdir()
        limit = str(memory_mb * MiB)
        if version == 2:
            _write(path / "memory.max", limit)
            _write(path / "memory.swap.max", "0", optional=True)
            _write(path / "memory.oom.group", "1", optional=True)
        else:
            _write(path / "memory.limit_in_bytes", limit)
            _write(path / "memory.memsw.limit_in_bytes", limit, optional=True)  # no swapping past it either
            _write(path / "memory.swappiness", "0", optional=True)

    def describe(self) -> str:
        knob = "memory.max" if self.version == 2 else "memory.limit_in_bytes"
        return f"labkit: memory limit {self.memory_mb} MB enforced by cgroup v{self.version} {knob}"

    def command(self, argv: list[str]) -> list[str]:
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"), *argv]

    def _read_peak_mb(self) -> int:
        names = ("memory.peak", "memory.current") if self.version == 2 else ("memory.max_usage_in_bytes",)
        for name in names:
            try:
                return int((self.path / name).read_text()) // MiB
            except (OSError, ValueError):
                continue
        return 0

    def _read_oom(self) -> bool:
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            lines = (self.path / name).read_text().splitlines()
        except OSError:
            return False
        counts = dict(line.split() for line in lines if len(line.split()) == 2)
        return int(counts.get("oom_kill", "0")) > 0 or int(counts.get("oom_group_kill", "0")) > 0

    def _release(self) -> None:
        _remove_cgroup(self.path)


class CgroupLimits:
    """The cloud's own cgroup (``labkit-lambda-<pid>``), under which each worker gets one; :meth:`find` makes it
    where this process may, or answers None."""

    def __init__(self, base: Path, version: int) -> None:
        self.base, self.version = base, version

    @classmethod
    def find(cls) -> tuple[CgroupLimits | None, str]:
        """The cloud's cgroup and how it was made, or None and why none could be."""
        reasons = []
        for version, where in _own_cgroups():
            for parent in where:
                try:
                    limits = cls._make(parent, version)
                except OSError as exc:
                    reasons.append(f"v{version} {parent}: {exc.strerror or exc}")
                    continue
                if limits is not None:
                    return limits, ""
                reasons.append(f"v{version} {parent}: no memory controller")
        return None, "; ".join(reasons) or "no cgroup memory controller is mounted"

    @classmethod
    def _make(cls, parent: Path, version: int) -> CgroupLimits | None:
        """The cloud's cgroup under ``parent``; None when ``parent``'s hierarchy has no memory controller; OSError
        when this process may not make one, or not move a process into it."""
        _remove_stale(parent)
        base = parent / f"labkit-lambda-{os.getpid()}"
        base.mkdir(exist_ok=True)
        try:
            if version == 2:
                if "memory" not in (base / "cgroup.controllers").read_text().split():
                    _write(parent / "cgroup.subtree_control", "+memory")  # EBUSY when the parent has processes
                _write(base / "cgroup.subtree_control", "+memory")
            limits = cls(base, version)
            probe = limits.limit(16)  # the real test: a process moved into a limited cgroup of its own
            try:
                moved = subprocess.run(probe.command(["true"]), capture_output=True, timeout=10)
            finally:
                probe.close()
            if moved.returncode != 0:
                raise PermissionError(errno.EACCES, f"cannot move a process into it: {moved.stderr.decode().strip()}")
            return limits
        except FileNotFoundError:
            _remove_cgroup(base)
            return None
        except subprocess.SubprocessError as exc:
            _remove_cgroup(base)
            raise OSError(errno.EIO, str(exc)) from exc
        except OSError:
            _remove_cgroup(base)
            raise

    def limit(self, memory_mb: int) -> CgroupLimit:
        return CgroupLimit(memory_mb, self.base / uuid.uuid4().hex[:16], self.version)

    def close(self) -> None:
        for child in self.base.iterdir() if self.base.is_dir() else ():
            if child.is_dir():
                _remove_cgroup(child)
        _remove_cgroup(self.base)


def _own_cgroups() -> list[tuple[int, list[Path]]]:
    """Where this process may make a memory cgroup: (version, candidate parents), v2 first. v2's "no internal
    processes" rule keeps a controller from a cgroup's children while it holds processes, so its parent (the cloud's
    cgroup beside this process's, in a delegated subtree) is tried too."""
    mounts: dict[str, tuple[str, Path]] = {}  # "memory" (v1) / "" (v2) -> (mount root, mount point)
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            dash = fields.index("-")
            fstype, options = fields[dash + 1], fields[dash + 3].split(",")
            if fstype == "cgroup2":
                mounts.setdefault("", (fields[3], Path(fields[4])))
            elif fstype == "cgroup" and "memory" in options:
                mounts.setdefault("memory", (fields[3], Path(fields[4])))
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except (OSError, ValueError, IndexError):
        return []
    found: list[tuple[int, list[Path]]] = []
    for line in own:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        key = "" if hierarchy == "0" else ("memory" if "memory" in controllers.split(",") else None)
        if key is None or key not in mounts:
            continue
        root, point = mounts[key]
        relative = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
        here = (point / relative).resolve() if relative != "." else point
        candidates = [here] + ([here.parent] if key == "" and here != point else [])
        found.append((2 if key == "" else 1, candidates))
    return sorted(found, key=lambda item: -item[0])


def _write(path: Path, value: str, optional: bool = False) -> None:
    try:
        path.write_text(value)
    except OSError:
        if not optional:
            raise


def _remove_cgroup(path: Path) -> None:
    """rmdir a cgroup (its files go with it); its last process may take a moment to leave."""
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                log.warning("could not remove the cgroup %s: %s", path, exc)
                return
            time.sleep(0.02)
    log.warning("the cgroup %s still holds a process; left behind", path)


def _remove_stale(parent: Path) -> None:
    """A cloud that ended without tidying up left its ``labkit-lambda-<pid>``: remove those of dead clouds."""
    for old in parent.glob("labkit-lambda-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            for child in [c for c in old.iterdir() if c.is_dir()]:
                _remove_cgroup(child)
            _remove_cgroup(old)


# -- the watchdog -----------------------------------------------------------------------------------------------
class WatchdogLimit(MemoryLimit):
    """Sampling of the worker's process tree, plus ``RLIMIT_DATA`` as a backstop."""

    mechanism = "watchdog"

    def __init__(self, memory_mb: int, why: str) -> None:
        super().__init__(memory_mb)
        self.why = why
        self._pid = 0
        self._working = threading.Event()
        self._ended = threading.Event()

    def describe(self) -> str:
        return (f"labkit: memory limit {self.memory_mb} MB enforced by sampling the worker's resident memory every "
                f"{SAMPLE_BUSY * 1000:.0f} ms, with RLIMIT_DATA {data_limit_mb(self.memory_mb)} MB as a backstop "
                f"(no cgroup could be made: {self.why})")

    def command(self, argv: list[str]) -> list[str]:
        kib = data_limit_mb(self.memory_mb) * 1024
        return ["/bin/sh", "-c", f'ulimit -d {kib} && exec "$@"', "sh", *argv]

    def started(self, pid: int) -> None:
        self._pid = pid
        self._working.set()
        threading.Thread(target=self._watch, daemon=True, name="lambda-memory").start()

    def busy(self, working: bool) -> None:
        (self._working.set if working else self._working.clear)()

    def _watch(self) -> None:
        while not self._ended.is_set():
            used = tree_rss_mb(self._pid)
            with self.lock:
                self._peak = max(self._peak, used)
                over = used > self.memory_mb and not self._oom
                if over:
                    self._oom = True
            if over:
                for kill in (os.killpg, os.kill):  # the worker leads its process group: all of it goes
                    try:
                        kill(self._pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                return
            self._ended.wait(SAMPLE_BUSY if self._working.is_set() else SAMPLE_IDLE)

    def _read_peak_mb(self) -> int:
        """The highest sample, or the worker's own high-water mark (the kernel's VmHWM) when a burst fell between
        two samples: Max Memory Used is never below what the worker really held."""
        return max(self._peak, peak_rss_mb(self._pid)) if self._pid else self._peak

    def _read_oom(self) -> bool:
        return self._oom

    def _release(self) -> None:
        self._ended.set()


def tree_rss_mb(pid: int) -> int:
    """The resident memory of ``pid`` and its descendants, in whole MB (0 once it has gone)."""
    total_kib, todo, seen = 0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
                    break
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total_kib // 1024


class MemoryLimits:
    """The cloud's way of limiting its workers' memory, decided on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decided = False
        self._cgroups: CgroupLimits | None = None
        self._why = ""

    def limit(self, memory_mb: int) -> MemoryLimit:
        with self._lock:
            if not self._decided:
                self._decide()
        if self._cgroups is not None:
            return self._cgroups.limit(memory_mb)
        return WatchdogLimit(memory_mb, self._why)

    def _decide(self) -> None:
        self._decided = True
        wanted = os.environ.get(ENV, "")
        if wanted == "watchdog":
            self._why = f"{ENV}=watchdog"
        elif not shutil.which("/bin/sh"):
            self._why = "no /bin/sh"
        else:
            self._cgroups, self._why = CgroupLimits.find()
            if self._cgroups is None and wanted == "cgroup":
                raise RuntimeError(f"{ENV}=cgroup, but no cgroup could be made: {self._why}")
        log.info("Lambda memory limits: %s", f"cgroup v{self._cgroups.version} under {self._cgroups.base}"
                 if self._cgroups else f"watchdog ({self._why})")

    def summary(self) -> str:
        if not self._decided:
            return "not decided yet (at the first cold start)"
        return f"cgroup v{self._cgroups.version}" if self._cgroups else f"watchdog ({self._why})"

    def close(self) -> None:
        with self._lock:
            if self._cgroups is not None:
                self._cgroups.close()


def peak_rss_mb(pid: int) -> int:
    """The most resident memory ``pid`` ever held (VmHWM), in whole MB (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return 0
