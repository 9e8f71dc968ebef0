"""One Lambda execution environment: an ``awslambdaric`` process and the Runtime API it polls.

Each worker has its own Runtime API server on 127.0.0.1 (as each AWS sandbox has its own), so an
invocation is handed to exactly one process and a timeout kills exactly that process. The worker's
Python is the Lambda runtime venv (boto3 + awslambdaric only); function code and layer folders are
put on ``PYTHONPATH`` in AWS's order. The Runtime API measures timeouts in real (monotonic) time; the
times it hands the worker (the deadline, the trace id) are on the worker's own clock, the lab clock. The worker's
memory is limited and measured by its :class:`~.memory.MemoryLimit`: past ``MemorySize`` the whole worker is killed
and the invocation fails with ``Runtime.OutOfMemory``, as AWS's sandbox does.
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from labkit.localcloud.awslambda.memory import MemoryLimit

API = "/2018-06-01/runtime"
INIT_TIMEOUT = 10.0  # AWS gives the init phase 10 seconds


@dataclass
class Invocation:
    """One request to a function, and what came back."""

    request_id: str
    payload: bytes
    function_arn: str
    timeout: float
    client_context: str | None = None
    result: bytes | None = None
    error_type: str | None = None  # set when the handler (or the runtime) failed
    started: float = 0.0
    finished: float = 0.0
    max_memory_mb: int = 0  # the worker's peak so far, as the REPORT line shows it
    log_lines: list[str] = field(default_factory=list)


class Worker:
    """A warm (or warming) execution environment for one function configuration."""

    def __init__(self, python: str, handler: str, cwd: Path, env: dict[str, str],
                 on_log: Callable[[Worker, str], None], clock: Callable[[], float] = time.time,
                 credentials: Any = None, memory: MemoryLimit | None = None) -> None:
        self.clock = clock
        self.memory = memory
        self.notes: list[str] = []  # what the function's log says once about this environment  # lab time, as the worker's process reads it
        self.cv = threading.Condition()
        self.pending: Invocation | None = None
        self.current: Invocation | None = None
        self.init_error: bytes | None = None
        self.dead = False
        self.cold = True
        self.init_duration_ms = 0.0
        self.last_used = time.monotonic()
        self.retire_at = float("inf")
        self.credentials = credentials  # the execution role's session, which the logs are written with
        self.log_stream = f"{time.strftime('%Y/%m/%d', time.gmtime(clock()))}/[$LATEST]{uuid.uuid4().hex}"
        self._on_log = on_log
        self._output_lock = threading.Lock()
        self._partial = b""  # the start of a line not yet ended
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="runtime-api").start()
        env = {**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self._server.server_address[1]}",
               "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream}
        self._spawned = time.monotonic()
        argv = [python, "-s", "-m", "awslambdaric", handler]
        self.proc = subprocess.Popen(memory.command(argv) if memory else argv, cwd=str(cwd), env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if memory:
            memory.started(self.proc.pid)
        assert self.proc.stdout is not None  # stdout=PIPE
        self._output = self.proc.stdout
        threading.Thread(target=self._read_output, daemon=True, name="worker-logs").start()
        threading.Thread(target=self._watch, daemon=True, name="worker-watch").start()

    # -- Runtime API side (called by the HTTP handler threads) ------------------------------------
    def next_invocation(self) -> Invocation | None:
        with self.cv:
            if self.cold:
                self.init_duration_ms = (time.monotonic() - self._spawned) * 1000
            if self.memory:
                self.memory.busy(False)
            self.cv.wait_for(lambda: self.pending is not None or self.dead)
            if self.dead:
                return None
            if self.memory:
                self.memory.busy(True)
            inv, self.pending = self.pending, None
            assert inv is not None  # woken, and not dead: an invocation is pending
            inv.started = time.monotonic()
            self.current = inv
            self.cv.notify_all()
            return inv

    def complete(self, request_id: str, body: bytes, error_type: str | None) -> bool:
        with self.cv:
            inv = self.current
            if inv is None or inv.request_id != request_id:
                return False
            inv.result, inv.error_type, inv.finished = body, error_type, time.monotonic()
            self.cv.notify_all()
            return True

    def fail_init(self, body: bytes) -> None:
        with self.cv:
            self.init_error = body
            self.cv.notify_all()

    # -- the invoking side -------------------------------------------------------------------------
    def run(self, inv: Invocation) -> Invocation:
        """Hand ``inv`` to this worker and wait for its result, its init error or its timeout."""
        with self.cv:
            self.pending = inv
            self.cv.notify_all()
            self.cv.wait_for(lambda: self.current is inv or self.init_error or self.dead, INIT_TIMEOUT)
            started = self.current is inv
            if started:
                done = self.cv.wait_for(lambda: inv.result is not None or self.dead, inv.timeout)
            else:
                self.pending = None
        if not started:
            self._fail_before_start(inv)
        elif not done:
            self._fail(inv, "Sandbox.Timedout", {"errorMessage": f"{_stamp(self.clock())} {inv.request_id} "
                                                                 f"Task timed out after {inv.timeout:.2f} seconds"})
        elif inv.result is None:  # the process died mid-invocation
            self._exited(inv)
        elif self._out_of_memory(inv):  # a process of the worker was killed for memory: the whole sandbox goes
            self._exited(inv)
        else:
            self._drain_output()
        inv.max_memory_mb = self.peak_memory_mb()
        with self.cv:
            self.current = None
            self.cold = False
            self.last_used = time.monotonic()
        return inv

    def _out_of_memory(self, inv: Invocation) -> bool:
        """After an answer: did the worker run out of memory? (cgroup v1 killed one of its processes, or Python
        raised MemoryError at the watchdog's RLIMIT_DATA backstop)."""
        if self.memory is None:
            return False
        if inv.error_type and self.memory.mechanism == "watchdog" and inv.result is not None:
            try:
                raised = json.loads(inv.result).get("errorType")
            except (ValueError, AttributeError):
                raised = None
            if raised == "MemoryError":
                self.memory.backstop_hit()
        return self.memory.out_of_memory()

    def _exited(self, inv: Invocation) -> None:
        """The runtime exited (or was killed) during ``inv``: AWS's Runtime.OutOfMemory when the limit killed it,
        else Runtime.ExitError; either way the message says how it ended, and the worker is gone."""
        if self.memory is not None and self.memory.out_of_memory():
            error_type, how = "Runtime.OutOfMemory", "signal: killed"
        else:
            error_type, how = "Runtime.ExitError", _exit_text(self.proc.poll())
        self._fail(inv, error_type, {"errorType": error_type, "errorMessage": (
            f"RequestId: {inv.request_id} Error: Runtime exited with error: {how}")})

    def _fail(self, inv: Invocation, error_type: str, payload: dict[str, Any]) -> None:
        inv.finished = time.monotonic()
        inv.result, inv.error_type = json.dumps(payload).encode(), error_type
        self._drain_output()  # what it printed before failing belongs to this invocation's log
        self.kill()

    def _fail_before_start(self, inv: Invocation) -> None:
        inv.started = time.monotonic()
        if self.init_error:
            inv.finished = time.monotonic()
            inv.result, inv.error_type = self.init_error, "Runtime.InitError"
            self._drain_output()
            self.kill()
        elif self.dead and self.memory is not None and self.memory.out_of_memory():  # killed during init
            self._exited(inv)
        elif self.dead:
            self._fail(inv, "Runtime.ExitError", {"errorType": "Runtime.ExitError", "errorMessage": (
                f"RequestId: {inv.request_id} Error: Runtime exited without providing a reason "
                f"({_exit_text(self.proc.poll())})")})
        else:
            self._fail(inv, "Sandbox.Timedout", {"errorMessage": f"{_stamp(self.clock())} {inv.request_id} Task "
                                                                 f"timed out during init after {INIT_TIMEOUT:.2f} "
                                                                 "seconds"})

    @property
    def usable(self) -> bool:
        return not self.dead and self.init_error is None and self.proc.poll() is None

    def peak_memory_mb(self) -> int:
        """The worker's peak memory in MB, as its limit measures it (without one: the process's VmHWM)."""
        if self.memory is not None:
            return self.memory.peak_mb()
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        except OSError:
            pass
        return 0

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        with self.cv:
            self.dead = True
            self.cv.notify_all()
        self._server.shutdown()
        self._server.server_close()

    # -- process output and lifetime -----------------------------------------------------------------
    def _read_output(self) -> None:
        """Log the worker's output line by line. Each read and its lines happen under ``_output_lock``, so
        :meth:`_drain_output` never sees an empty pipe while a chunk taken from it is still unlogged."""
        fd = self._output.fileno()
        os.set_blocking(fd, False)
        readable = select.poll()  # (not select.select: a busy daemon's descriptors pass 1024)
        readable.register(fd, select.POLLIN)
        while True:
            readable.poll()
            with self._output_lock:
                if not self._read_chunk(fd):
                    break
        with self._output_lock:
            if self._partial:
                self._on_log(self, self._partial.decode(errors="replace"))
                self._partial = b""

    def _read_chunk(self, fd: int) -> bool:
        """Read what the pipe holds and log its whole lines (the caller holds ``_output_lock``); False at EOF."""
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:  # the drain took it first
            return True
        except OSError:
            return False
        if not chunk:
            return False
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            self._on_log(self, line.decode(errors="replace"))
        return True

    def _drain_output(self, limit: float = 0.25) -> None:
        """Log what the worker wrote before answering (it wrote it first, so it is in the pipe or logged); a
        worker that goes on writing (a thread of its own) is read for ``limit`` seconds at most."""
        buf = bytearray(4)
        deadline = time.monotonic() + limit
        with self._output_lock:
            while time.monotonic() < deadline:
                try:
                    fd = self._output.fileno()
                    fcntl.ioctl(fd, termios.FIONREAD, buf)
                except (OSError, ValueError):
                    return
                if struct.unpack("i", buf)[0] == 0 or not self._read_chunk(fd):
                    return

    def _watch(self) -> None:
        self.proc.wait()
        if self.memory is not None:
            self.memory.close()  # its last readings kept: the REPORT line may come after
        with self.cv:
            self.dead = True
            self.cv.notify_all()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "unknown"
    return f"signal: {signal.Signals(-code).name.lower().removeprefix('sig')}" if code < 0 else f"exit status {code}"


def _stamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def _handler_for(worker: Worker) -> type[BaseHTTPRequestHandler]:
    class RuntimeApiHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1  # headers and body leave in one write: no Nagle/delayed-ACK stall per request

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            if self.path != f"{API}/invocation/next":
                return self._reply(404, b'{"errorMessage": "not found"}')
            inv = worker.next_invocation()
            if inv is None:
                return self._reply(410, b'{"errorMessage": "environment shutting down"}')
            now = worker.clock()
            deadline = int((now + inv.timeout) * 1000)
            headers = {"Lambda-Runtime-Aws-Request-Id": inv.request_id, "Lambda-Runtime-Deadline-Ms": str(deadline),
                       "Lambda-Runtime-Invoked-Function-Arn": inv.function_arn,
                       "Lambda-Runtime-Trace-Id": f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]};Sampled=0"}
            if inv.client_context:
                headers["Lambda-Runtime-Client-Context"] = inv.client_context
            self._reply(200, inv.payload, headers)

        def do_POST(self) -> None:
            body = self._body()
            parts = self.path.removeprefix(API + "/").split("/")
            if parts == ["init", "error"]:
                worker.fail_init(body)
                return self._reply(202, b'{"status": "OK"}')
            if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                error_type = None
                if parts[2] == "error":
                    error_type = self.headers.get("Lambda-Runtime-Function-Error-Type") or "Unhandled"
                ok = worker.complete(parts[1], body, error_type)
                return self._reply(202 if ok else 400, b'{"status": "OK"}' if ok else b'{"errorMessage": "stale"}')
            self._reply(404, b'{"errorMessage": "not found"}')

    return RuntimeApiHandler
