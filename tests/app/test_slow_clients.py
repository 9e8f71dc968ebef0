"""The order app behind Hypercorn, as the instance runs it, over real sockets: slow and short bodies.

A client that sends its body slowly, or stops before its Content-Length, must neither hold the threads that place
orders nor get an order stored. The app runs with the project's own ``flask_app/hypercorn.toml`` and a validator
that records every order it is asked to store in a file (the ``served`` fixture, tests/app/conftest.py).
"""
from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

ORDER = {"customer_name": "Ada", "product": "Pen", "quantity": "2", "amount": "3.50"}


def _stored(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _start_slow_post(port: int, body: bytes, declared: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /api/orders HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % declared + body)
    return sock


def test_slow_clients_do_not_take_the_app_down(served):
    base, port, stored = served
    body = json.dumps(ORDER).encode()
    # more stalled clients than the app has threads, each holding back the end of its body
    stalled = [_start_slow_post(port, body[:10], len(body)) for _ in range(16)]
    try:
        assert json.load(urllib.request.urlopen(f"{base}/healthz", timeout=5))["instance_id"] == "i-slowclients"
        request = urllib.request.Request(f"{base}/api/orders", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 201
            placed = json.load(answer)["order_id"]
    finally:
        for sock in stalled:
            sock.close()
    assert [order["order_id"] for order in _stored(stored)] == [placed]


def test_a_body_shorter_than_its_content_length_is_dropped_and_stores_nothing(served):
    _base, port, stored = served
    body = json.dumps(ORDER).encode()
    sock = _start_slow_post(port, body, len(body) + 40)  # the whole order, but 40 bytes are promised and never sent
    try:
        # the server gives up on the request after its read timeout (10 s; the socket's own 30 s would raise
        # TimeoutError first if it never did): an error status or a closed connection
        answer = sock.recv(4096)
    finally:
        sock.close()
    assert answer == b"" or answer.split(b" ", 2)[1].startswith(b"4"), answer[:80]
    assert _stored(stored) == []
