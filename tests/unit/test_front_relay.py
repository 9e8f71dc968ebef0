"""A front carries a connection's bytes in C (``labkit_relay`` of the network library) as it did in Python: both
ways at once, a half-close passed on, an error on one side ending the other (issue 28: the order path crosses a
front)."""
from __future__ import annotations

import os
import socket
import struct
import threading

import pytest

from labkit.localcloud.network import listeners
from labkit.localcloud.network.listeners import Forwarder
from labkit.localcloud.network.wiring import ensure_library


@pytest.fixture(params=["relay", "python"])
def relay(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test with the C relay and with the Python loop it replaces (the fallback)."""
    monkeypatch.setattr(listeners, "_relay", None)
    if request.param == "relay":
        listeners.use_relay(str(ensure_library()))
        assert listeners._relay is not None
    return request.param


def _serve_once(handler) -> tuple[socket.socket, threading.Thread]:
    server = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        peer, _ = server.accept()
        with peer:
            handler(peer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return server, thread


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_both_ways_at_once_and_the_half_close_is_passed_on(relay: str) -> None:
    body = os.urandom(3 * 1024 * 1024)  # more than a socket buffer holds, both ways at once
    seen: list[bytes] = []

    def echo_after_end(peer: socket.socket) -> None:
        sender = threading.Thread(target=lambda: (peer.sendall(body[::-1]), peer.shutdown(socket.SHUT_WR)))
        sender.start()
        seen.append(_read_all(peer))  # ends only when the client's half-close came through the front
        sender.join()

    server, thread = _serve_once(echo_after_end)
    front = Forwarder(("127.0.0.1", 0), server.getsockname())
    try:
        with socket.create_connection(front.address, timeout=10) as client:
            sending = threading.Thread(target=lambda: (client.sendall(body), client.shutdown(socket.SHUT_WR)))
            sending.start()
            answer = _read_all(client)
            sending.join()
        thread.join(10)
        assert seen == [body]
        assert answer == body[::-1]
    finally:
        front.close()
        server.close()


def test_a_reset_by_the_server_ends_the_client_s_connection(relay: str) -> None:
    def reset(peer: socket.socket) -> None:
        peer.recv(10)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    server, thread = _serve_once(reset)
    front = Forwarder(("127.0.0.1", 0), server.getsockname())
    try:
        with socket.create_connection(front.address, timeout=10) as client:
            client.sendall(b"hello")
            thread.join(10)
            try:
                ended = client.recv(65536) == b""  # both sockets shut down by the front (its Python loop did so)
            except ConnectionResetError:
                ended = True
            assert ended
    finally:
        front.close()
        server.close()
