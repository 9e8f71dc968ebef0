"""The app's fixtures: the Flask app (flask_app/, on pytest's pythonpath) with a fake validator and its test
client; the app behind Hypercorn."""
from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from app import create_app
from validator import ValidationResult

from tests.helpers import free_port, until


class FakeValidator:
    """Stands in for the Lambda in unit tests: records what was sent, answers what it is told."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.stored: dict[str, dict] = {}
        self.answer: ValidationResult | Exception = ValidationResult("accepted", order_id="11111111-2222-4333-8444-555555555555")

    def submit(self, order: dict) -> ValidationResult:
        self.sent.append(order)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def find(self, order_id: str) -> dict | None:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.stored.get(order_id)


@pytest.fixture()
def validator() -> FakeValidator:
    return FakeValidator()


@pytest.fixture()
def app(validator):
    return create_app({"VALIDATOR": validator, "WTF_CSRF_ENABLED": False, "TESTING": True})


@pytest.fixture()
def client(app):
    return app.test_client()


# The app behind Hypercorn, as the instance runs it (flask_app/hypercorn.toml), over real sockets; its validator
# records every order it is asked to store in a file.
FLASK_APP = Path(__file__).resolve().parents[2] / "flask_app"
HYPERCORN = Path(sys.executable).with_name("hypercorn")
SERVED = """import json
from app import create_app
from validator import ValidationResult


class Recorder:
    def submit(self, order):
        with open({stored!r}, "a") as out:
            out.write(json.dumps(order, default=str) + "\\n")
        return ValidationResult("accepted", order_id=order["order_id"])

    def find(self, order_id):
        return None


app = create_app({{"VALIDATOR": Recorder(), "WTF_CSRF_ENABLED": False, "INSTANCE_ID": "i-slowclients"}})
"""


@pytest.fixture()
def served(tmp_path):
    stored = tmp_path / "stored.jsonl"
    stored.touch()
    (tmp_path / "served.py").write_text(SERVED.format(stored=str(stored)))
    port = free_port()
    proc = subprocess.Popen([str(HYPERCORN), "--config", str(FLASK_APP / "hypercorn.toml"),
                             "--bind", f"127.0.0.1:{port}", "served:app"], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(FLASK_APP)},  # app.py, validator.py
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        def answers() -> bool:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
                return True
            except OSError:
                assert proc.poll() is None, "hypercorn did not start"
                return False

        until(answers, 30, 0.2, message="hypercorn answering")
        yield base, port, stored
    finally:
        proc.terminate()
        proc.wait(timeout=20)
