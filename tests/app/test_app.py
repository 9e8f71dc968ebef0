"""The Flask app's pages and JSON API, with the validator replaced by a fake."""
from __future__ import annotations

import re
import uuid

from app import create_app
from validator import ValidationResult, ValidatorUnavailable

from tests.helpers import free_port, until

ORDER = {"customer_name": "Ada", "product": "Pen", "quantity": "2", "amount": "3.50"}


def _without_ids(sent: list[dict]) -> list[dict]:
    for order in sent:
        assert str(uuid.UUID(order["order_id"])) == order["order_id"]
    return [{k: v for k, v in order.items() if k != "order_id"} for order in sent]


def test_form_page_renders(client):
    page = client.get("/")
    assert page.status_code == 200 and b"Place an order" in page.data and b'name="amount"' in page.data


def test_form_success_shows_the_order_id(client, validator):
    page = client.post("/orders", data=ORDER)
    assert page.status_code == 201 and b"11111111-2222-4333-8444-555555555555" in page.data
    assert _without_ids(validator.sent) == [ORDER]


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
    assert _without_ids(validator.sent) == [ORDER]


def test_api_statuses(client, validator):
    assert client.post("/api/orders", json=ORDER).status_code == 201
    validator.answer = ValidationResult("accepted", order_id="x", duplicate=True)
    again = client.post("/api/orders", json=ORDER)
    assert again.status_code == 200 and again.json == {"order_id": "x", "duplicate": True}
    validator.answer = ValidationResult("conflict", order_id="x", errors={"order_id": "used"})
    assert client.post("/api/orders", json=ORDER).status_code == 409
    validator.answer = ValidationResult("invalid", errors={"amount": "bad"})
    assert client.post("/api/orders", json=ORDER).get_json() == {"errors": {"amount": "bad"}}
    assert client.post("/api/orders", json=ORDER).status_code == 422
    validator.answer = ValidatorUnavailable("boom")
    failed = client.post("/api/orders", json=ORDER)
    assert failed.status_code == 503 and uuid.UUID(failed.json["order_id"])
    assert validator.sent[-1]["order_id"] == failed.json["order_id"] and "GET /api/orders/" in failed.json["error"]


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
    import urllib.request
    from pathlib import Path

    port = free_port()
    app_dir = Path(__file__).resolve().parents[2] / "flask_app"
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "AWS_DEFAULT_REGION": "us-east-1"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=app_dir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def healthz() -> int:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                return response.status

        assert until(healthz, 15, ignoring=(OSError,), message="python3 app.py answering") == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_form_carries_one_order_id_from_render_to_every_resend(client, validator):
    page = client.get("/").data.decode()
    order_id = re.search(r'name="order_id" id="order_id" value="([^"]+)"', page).group(1)
    validator.answer = ValidatorUnavailable("Task timed out after 30.00 seconds")
    again = client.post("/orders", data={**ORDER, "order_id": order_id})
    assert again.status_code == 503 and f'value="{order_id}"'.encode() in again.data  # the resend is the same order
    validator.answer = ValidationResult("accepted", order_id=order_id)
    assert client.post("/orders", data={**ORDER, "order_id": order_id}).status_code == 201
    assert [o["order_id"] for o in validator.sent] == [order_id, order_id]


def test_the_api_takes_the_id_from_the_body_or_the_idempotency_key(client, validator):
    order_id = str(uuid.uuid4())
    assert client.post("/api/orders", json={**ORDER, "order_id": order_id}).status_code == 201
    assert client.post("/api/orders", json=ORDER, headers={"Idempotency-Key": order_id.upper()}).status_code == 201
    assert [o["order_id"] for o in validator.sent] == [order_id, order_id]
    client.post("/api/orders", json=ORDER)
    assert validator.sent[-1]["order_id"] != order_id  # a client that sends none gets a fresh one
    other = str(uuid.uuid4())
    both = client.post("/api/orders", json={**ORDER, "order_id": order_id}, headers={"Idempotency-Key": other})
    assert both.status_code == 400 and "different orders" in both.json["error"]
    bad = client.post("/api/orders", json=ORDER, headers={"Idempotency-Key": "abc"})
    assert bad.status_code == 400 and "Idempotency-Key must be a UUID" in bad.json["error"]
    assert len(validator.sent) == 3


def test_get_order_tells_whether_it_is_stored(client, validator):
    order_id = str(uuid.uuid4())
    assert client.get(f"/api/orders/{order_id}").json == {"order_id": order_id, "stored": False}
    assert client.get(f"/api/orders/{order_id}").status_code == 404
    validator.stored[order_id] = {"order_id": order_id, "amount": "3.50"}
    found = client.get(f"/api/orders/{order_id}")
    assert found.status_code == 200 and found.json["stored"] is True and found.json["order"]["amount"] == "3.50"
    assert client.get("/api/orders/not-a-uuid").status_code == 400
    validator.answer = ValidatorUnavailable("down")
    assert client.get(f"/api/orders/{order_id}").status_code == 503


def test_bad_input_is_answered_as_bad_input(client, validator):
    deep = b'{"customer_name": ' + b"[" * 8000 + b"]" * 8000 + b"}"
    answer = client.post("/api/orders", data=deep, content_type="application/json")
    assert answer.status_code == 400 and "nested more than" in answer.json["error"]
    shallow_but_deep = {"customer_name": [[[[[[[[["x"]]]]]]]]]}
    assert "nested more than" in client.post("/api/orders", json=shallow_but_deep).json["error"]
    surrogate = client.post("/api/orders", data=b'{"customer_name": "\\ud800x", "product": "P", "quantity": 1, '
                                                  b'"amount": "1"}', content_type="application/json")
    assert surrogate.status_code == 400 and "customer_name is not valid Unicode" in surrogate.json["error"]
    latin1 = client.post("/api/orders", data=b'{"customer_name": "Zo\xeb"}', content_type="application/json")
    assert latin1.status_code == 400 and "not valid UTF-8" in latin1.json["error"]
    assert validator.sent == []


def test_a_body_shorter_than_its_content_length_stores_nothing(app, validator):
    body = b'{"customer_name": "A", "product": "B", "quantity": 1, "amount": "1"}'
    environ = {"CONTENT_LENGTH": str(len(body) + 20), "CONTENT_TYPE": "application/json",
               "wsgi.input_terminated": True}
    import io

    with app.test_client() as client:
        answer = client.post("/api/orders", input_stream=io.BytesIO(body), environ_overrides=environ)
    assert answer.status_code == 400 and "Content-Length" in answer.json["error"]
    assert validator.sent == []
