"""A front whose new listener cannot bind stays retryable (finding: it stayed closed for good)."""
from __future__ import annotations

import errno
import socket

import pytest

from labkit.localcloud.network import listeners as net_listeners
from labkit.localcloud.network.listeners import Front


def test_failed_switch_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    front = Front(("127.0.0.1", 0))  # a black hole
    real, failures = net_listeners.listener, [1]

    def busy_once(address: tuple[str, int], backlog: int) -> socket.socket:
        if failures:
            failures.pop()
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return real(address, backlog)

    monkeypatch.setattr(net_listeners, "listener", busy_once)
    try:
        with pytest.raises(OSError):
            front.point(server.getsockname())
        assert front.target is None  # not switched
        front.point(server.getsockname())  # the same target again: tried again, not skipped
        assert front.target == server.getsockname()
        with socket.create_connection(front.address, timeout=5) as client:
            peer, _ = server.accept()
            client.sendall(b"x")
            assert peer.recv(1) == b"x"
            peer.close()
    finally:
        front.close()
        server.close()
