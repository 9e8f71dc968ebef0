"""The Flask app's pages and JSON API, with the validator replaced by a fake."""
from __future__ import annotations

import re

from tests.app.conftest import ValidationResult, ValidatorUnavailable, create_app

ORDER = {"customer_name": "Ada", "product": "Pen", "quantity": "2", "amount": "3.50"}


def test_form_page_renders(client):
    page = client.get("/")
    assert page.status_code == 200 and b"Place an order" in page.data and b'name="amount"' in page.data


def test_form_success_shows_the_order_id(client, validator):
    page = client.post("/orders", data=ORDER)
    assert page.status_code == 201 and b"11111111-2222-4333-8444-555555555555" in page.data
    assert validator.sent == [ORDER]


def test_form_errors_refill_the_form(client, validator):
    validator.answer = ValidationResult("invalid", errors={"amount": "amount must be greater than 0"})
    page = client.post("/orders", data={**ORDER, "amount": "0", "customer_name": "Zoë <b>"})
    assert page.status_code == 422
    assert b"amount must be greater than 0" in page.data
    assert 'value="Zoë &lt;b&gt;"' in page.data.decode()  # refilled and escaped


def test_form_when_the_validator_fails(client, validator):
    validator.answer = ValidatorUnavailable("Task timed out after 3.00 seconds")
    page = client.post("/orders", data=ORDER)
    assert page.status_code == 503 and b"unavailable" in page.data
    assert b"Task timed out" not in page.data and b"Traceback" not in page.data


def test_csrf_is_required_for_the_form(validator):
    app = create_app({"VALIDATOR": validator})
    client = app.test_client()
    assert client.post("/orders", data=ORDER).status_code == 400
    token = re.search(rb'name="csrf_token" value="([^"]+)"', client.get("/").data).group(1).decode()
    assert client.post("/orders", data={**ORDER, "csrf_token": token}).status_code == 201
    assert validator.sent == [ORDER]


def test_api_statuses(client, validator):
    assert client.post("/api/orders", json=ORDER).status_code == 201
    validator.answer = ValidationResult("accepted", order_id="x", duplicate=True)
    again = client.post("/api/orders", json=ORDER)
    assert again.status_code == 200 and again.json == {"order_id": "x", "duplicate": True}
    validator.answer = ValidationResult("invalid", errors={"amount": "bad"})
    assert client.post("/api/orders", json=ORDER).get_json() == {"errors": {"amount": "bad"}}
    assert client.post("/api/orders", json=ORDER).status_code == 422
    validator.answer = ValidatorUnavailable("boom")
    assert client.post("/api/orders", json=ORDER).status_code == 503


def test_api_rejects_bodies_that_are_not_objects_or_too_large(client, validator):
    assert client.post("/api/orders", json=[1, 2]).status_code == 400
    assert client.post("/api/orders", data="{not json", content_type="application/json").status_code == 400
    big = client.post("/api/orders", json={**ORDER, "product": "x" * 17000})
    assert big.status_code == 413 and big.is_json
    assert validator.sent == []


def test_health_and_no_debug(app, client):
    assert client.get("/healthz").json == {"status": "ok", "instance_id": ""}
    assert app.debug is False
    missing = client.get("/nope")
    assert missing.status_code == 404 and b"Traceback" not in missing.data


def test_health_names_the_instance(validator):
    app = create_app({"VALIDATOR": validator, "INSTANCE_ID": "i-0123456789abcdef0"})
    assert app.test_client().get("/healthz").json == {"status": "ok", "instance_id": "i-0123456789abcdef0"}


def test_unexpected_errors_show_no_stack_trace(client, validator):
    validator.answer = RuntimeError("secret internals")
    page = client.post("/orders", data=ORDER)
    assert page.status_code == 500 and b"secret internals" not in page.data and b"Traceback" not in page.data


def test_api_keeps_numbers_as_exact_decimal_text(client, validator):
    client.post("/api/orders", data=b'{"customer_name": "A", "product": "B", "quantity": 2, "amount": 0.1}',
                content_type="application/json")
    client.post("/api/orders", data=b'{"customer_name": "A", "product": "B", "quantity": 2, "amount": NaN}',
                content_type="application/json")
    assert [o["amount"] for o in validator.sent] == ["0.1", "NaN"]
    assert validator.sent[0]["quantity"] == 2


def test_python3_app_py_still_serves_it(tmp_path):
    import os
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from tests.conftest import free_port

    port = free_port()
    app_dir = Path(__file__).resolve().parents[2] / "flask_app"
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "AWS_DEFAULT_REGION": "us-east-1"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=app_dir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "python3 app.py did not start"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
