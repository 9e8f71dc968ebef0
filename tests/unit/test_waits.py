"""labkit's waits (tenacity): the app check tells this lab's app from another listener, and gives up in time."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labkit import StepError, compute
from tests.helpers import free_port


class _Healthz(BaseHTTPRequestHandler):
    instance_id = "i-0other"

    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "instance_id": self.instance_id}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def other_app():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture()
def no_log(monkeypatch):
    monkeypatch.setattr(compute, "app_log", lambda lab: "(service log)")
    monkeypatch.setattr(compute, "FOREIGN_GRACE_SECONDS", 0.5)


def test_wait_for_app_returns_when_this_labs_instance_answers(other_app, no_log):
    compute.wait_for_app(None, other_app, "i-0other", step=8, seconds=5)


def test_wait_for_app_refuses_another_labs_app(other_app, no_log):
    with pytest.raises(StepError, match=r"answered by another app \(instance i-0other\)[\s\S]*\(service log\)"):
        compute.wait_for_app(None, other_app, "i-0mine", step=8, seconds=30)


def test_wait_for_app_gives_up_when_nothing_answers(no_log):
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(StepError, match="did not answer as the Orders app within 1 s"):
        compute.wait_for_app(None, url, "i-0mine", step=8, seconds=1)
