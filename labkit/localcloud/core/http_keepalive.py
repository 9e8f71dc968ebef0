"""The daemon's HTTP request handler: moto's, with HTTP/1.1 keep-alive connections.

werkzeug's development server answers every request with ``Connection: close`` because it cannot tell where a
request's body ends before the next request begins. Every AWS SDK call then pays for a new TCP connection
and a new server thread (botocore reconnects, the daemon accepts and starts a thread: about 1 ms of the
~5 ms a warm Lambda invoke costs). AWS's endpoints keep connections open, and so does this handler: it reads
a request's whole body (``Content-Length``) before the application runs and hands it over from memory, so
nothing of the next request is ever read as this one's. A chunked upload keeps werkzeug's own handling and
closes the connection, as an error in the middle of an answer does. An idle
connection is closed after :data:`IDLE_SECONDS`, as AWS's endpoints close theirs; the SDKs reconnect.
"""
from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from moto.moto_server.werkzeug_app import MotoRequestHandler

if TYPE_CHECKING:  # pragma: no cover - types only
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

IDLE_SECONDS = 20.0  # a lab calls in bursts; an idle connection holds a thread of the daemon until then
FAILED = "labkit.keepalive.failed"
_lock = threading.Lock()
_idle: set[socket.socket] = set()  # connections waiting for their next request
_cut: set[socket.socket] = set()  # idle connections ended by close_idle_connections: they run no further request
_epoch = [0]  # bumped by close_idle_connections; a connection opened or used before it ends after its answer


def close_idle_connections() -> None:
    """End every kept connection: the idle ones now, the busy ones once they have answered."""
    with _lock:
        _epoch[0] += 1
        idle = list(_idle)
        _cut.update(idle)  # a request already read off one of them is not run (see parse_request)
        _idle.clear()
    for sock in idle:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # its handler's read of the next request line returns at once
        except OSError:
            pass


class KeepAliveRequestHandler(MotoRequestHandler):
    """moto's request handler with keep-alive connections and without one log line per API call."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS  # per socket operation: an idle keep-alive connection ends, its thread too
    wbufsize = -1  # status, headers and body leave in one write (see setup)

    def setup(self) -> None:
        super().setup()
        # an answer's last segment must not wait for the client's delayed ACK of the one before it
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._epoch = _epoch[0]

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header of every answer, in lab time (one clock: :mod:`.timestamps`)."""
        if timestamp is None:
            from labkit.localcloud.core.clock import ClockService
            from labkit.localcloud.core.patches import find

            service = find(ClockService)
            timestamp = service.clock.timestamp() if service is not None else None
        return super().date_time_string(timestamp)

    def handle_one_request(self) -> None:
        with _lock:
            if self._epoch != _epoch[0]:  # the VPC changed since this connection was opened: connect again
                self.close_connection = True
                return
            _idle.add(self.connection)
        try:
            super().handle_one_request()
        finally:
            with _lock:
                _idle.discard(self.connection)
                _cut.discard(self.connection)

    def parse_request(self) -> bool:
        with _lock:  # the request line is in: no longer idle (nothing may cut this request off now)
            if self.connection in _cut:
                # Cut while its request was arriving: its answer could not be sent, and a client resends a
                # request that got no answer, so running it would run a RunInstances or an Invoke twice.
                self.close_connection = True
                return False
            _idle.discard(self.connection)
        return super().parse_request()

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def run_wsgi(self) -> None:
        self._expected = self.headers.get("Expect", "").strip().lower() == "100-continue"
        if self._expected:  # the client sends the body once told to: tell it now, and read the body
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
            del self.headers["Expect"]
        length = _body_length(self.headers)
        if length is None:  # a chunked body: werkzeug's own way, then close
            self.close_connection = True
            return super().run_wsgi()
        socket_file = self.rfile
        body = socket_file.read(length) if length else b""
        if len(body) < length:  # the client went (or the connection was cut): nothing to answer
            self.close_connection = True
            return
        # werkzeug reads the body from (and, once answered, drains) self.rfile: give it this request's body only
        self.rfile = io.BytesIO(body)
        self._keep_alive = True
        try:
            super().run_wsgi()
        finally:
            self.rfile, self._keep_alive = socket_file, False
        if self.environ.get(FAILED):
            self.close_connection = True

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        if getattr(self, "_expected", False):
            environ["HTTP_EXPECT"] = "100-continue"  # as the client sent it (the signature may cover it)
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and getattr(self, "_keep_alive", False) \
                and not self.close_connection and self._epoch == _epoch[0]:
            return  # werkzeug's unconditional "Connection: close": this connection stays open
        super().send_header(keyword, value)  # sent: the client does not reuse this connection


def _body_length(headers: Any) -> int | None:
    """The body's length when it is known before reading it (None: a chunked body)."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return None
    try:
        length = int(headers.get("Content-Length") or 0)
    except ValueError:
        return None
    return length if length >= 0 else None


def noting_failures(app: WSGIApplication) -> WSGIApplication:
    """Wrap a WSGI app so that a request it fails (an exception, maybe after part of the answer went) closes its
    connection instead of leaving the next request to read whatever was left."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            result = app(environ, start_response)
        except BaseException:
            environ[FAILED] = True
            raise
        if isinstance(result, list):
            return result
        return _Guarded(result, environ)

    return wrapped


class _Guarded:
    """A response iterable that notes a failure while it is being sent."""

    def __init__(self, result: Iterable[bytes], environ: WSGIEnvironment) -> None:
        self._result, self._environ = result, environ

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._result
        except BaseException:
            self._environ[FAILED] = True
            raise

    def close(self) -> None:
        if hasattr(self._result, "close"):
            self._result.close()
