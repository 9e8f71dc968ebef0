"""labkit's calls to the daemon's own API send a request again when the daemon closed its connection unanswered
(it does so when the lab's network changes, and runs no request it had not begun), as the AWS SDKs do; a daemon
that keeps closing them is reported, not waited on for ever."""
from __future__ import annotations

import http.client
import socket
import threading

import pytest

from labkit.localcloud import control


def _server(unanswered: int) -> tuple[socket.socket, list[bytes]]:
    """A server on a free port that closes its first ``unanswered`` connections after reading the request."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                seen.append(conn.recv(65536))
                if len(seen) > unanswered:
                    body = b'{"ok": true}'
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    threading.Thread(target=serve, daemon=True).start()
    return listener, seen


def test_a_request_closed_unanswered_is_sent_again():
    listener, seen = _server(unanswered=2)
    try:
        port = listener.getsockname()[1]
        assert control._http("GET", f"http://127.0.0.1:{port}/_labkit/state") == {"ok": True}
        assert len(seen) == 3 and all(s.startswith(b"GET /_labkit/state ") for s in seen)
    finally:
        listener.close()


def test_a_daemon_that_keeps_closing_is_reported():
    listener, seen = _server(unanswered=10)
    try:
        port = listener.getsockname()[1]
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            control._http("GET", f"http://127.0.0.1:{port}/_labkit/state")
        assert len(seen) == control.SENDS
    finally:
        listener.close()
