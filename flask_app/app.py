"""Orders web app: an order form and a JSON API in front of the order-validator Lambda.

``python3 app.py`` serves it as the tutorial does (HOST, default 0.0.0.0; PORT, default 5000).
In production: ``hypercorn --bind 0.0.0.0:5000 --read-timeout 10 'app:create_app()'`` (see labkit/compute.py).

Every order gets its id before the first attempt to store it: the form carries one in a hidden field, the
JSON API takes ``order_id`` or an ``Idempotency-Key`` header (or makes one). Every retry, by the browser, the
client or the Lambda client, resends that id, and the function stores an id once, so an order is never
stored twice; ``GET /api/orders/<id>`` tells whether it is stored, so a 503 or a timeout is never a guess.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from flask import Blueprint, Flask, abort, current_app, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import ClosingIterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validator import ValidationResult, ValidatorClient, ValidatorUnavailable

MAX_BODY = 16 * 1024
MAX_DEPTH = 8  # an order is a flat object; anything nested deeper is not an order
FIELDS = ("customer_name", "product", "quantity", "amount")
csrf = CSRFProtect()
pages = Blueprint("pages", __name__)
api = Blueprint("api", __name__, url_prefix="/api")
log = logging.getLogger("orders_app")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Application factory. ``config`` may hold VALIDATOR (a client with ``submit``) for tests."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32),
        MAX_CONTENT_LENGTH=MAX_BODY,
        ORDER_VALIDATOR_FUNCTION=os.environ.get("ORDER_VALIDATOR_FUNCTION", "order-validator"),
        WTF_CSRF_TIME_LIMIT=None,
        INSTANCE_ID=os.environ.get("INSTANCE_ID", ""),
    )
    app.config.update(config or {})
    app.debug = False
    if "VALIDATOR" not in app.config:
        app.config["VALIDATOR"] = ValidatorClient(app.config["ORDER_VALIDATOR_FUNCTION"])
    app.before_request(_require_whole_body)  # before CSRF reads the form
    csrf.init_app(app)
    csrf.exempt(api)
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.wsgi_app = EmptyBodyStillAnswers(app.wsgi_app)  # type: ignore[method-assign]
    return app


class EmptyBodyStillAnswers:
    """WSGI middleware: a response without a body (``304 Not Modified``, a ``HEAD``, a ``204``) yields one empty
    chunk, so Hypercorn sends its status line and headers.

    Hypercorn 0.18's WSGI bridge sends the status and headers together with the first body chunk the application
    yields, and after the last one an end-of-body message; when the body yields nothing it sends the end alone,
    which Hypercorn itself refuses (``UnexpectedMessageError``) and answers 500 (pgjones/hypercorn#331, open).
    So every conditional GET of ``/static/style.css`` (a browser sends one for each page after the first: the
    file is served ``no-cache``) answered 500 instead of 304, and the page lost its style. An empty chunk is
    what the WSGI spec allows a body to be; it changes nothing on the wire.
    """

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = self.wsgi_app(environ, start_response)
        # closed even when the server closes it before reading (WSGI: the server calls close() on what it got)
        return ClosingIterator(_at_least_one_chunk(body), getattr(body, "close", None))


def _at_least_one_chunk(body: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks of ``body``, or one empty chunk when it has none."""
    empty = True
    for chunk in body:
        empty = False
        yield chunk
    if empty:
        yield b""


class Validator(Protocol):
    """What the app asks of the order-validator function: :class:`ValidatorClient`, or a test's stand-in."""

    def submit(self, order: dict[str, Any]) -> ValidationResult: ...

    def find(self, order_id: str) -> dict[str, Any] | None: ...


def _validator() -> Validator:
    validator: Validator = current_app.config["VALIDATOR"]
    return validator


def _require_whole_body() -> None:
    """Refuse a body shorter than its Content-Length (the client gave up or lied): nothing of it is used."""
    if request.method in ("POST", "PUT", "PATCH") and request.content_length:
        data = request.get_data(cache=True)
        if len(data) < request.content_length:
            abort(400, f"The request body ended after {len(data)} of the {request.content_length} bytes its "
                       "Content-Length announced; nothing was stored. Send the whole body.")


def _parse_uuid(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value.strip())) if value and value.isascii() else None
    except ValueError:
        return None


@pages.get("/")
def order_form() -> ResponseReturnValue:
    return render_template("order_form.html", values={"order_id": str(uuid.uuid4())}, errors={})


@pages.post("/orders")
def create_order_from_form() -> ResponseReturnValue:
    values = {name: request.form.get(name, "") for name in FIELDS}
    # The form's hidden order_id is made when the form is shown, so a re-sent form is the same order.
    values["order_id"] = _parse_uuid(request.form.get("order_id")) or str(uuid.uuid4())
    try:
        result = _validator().submit(values)
    except ValidatorUnavailable as exc:
        log.error("order %s not confirmed: %s", values["order_id"], exc)
        return render_template("order_form.html", values=values, errors={}, unavailable=True), 503
    if result.status == "conflict":
        values["order_id"] = str(uuid.uuid4())
        return render_template("order_form.html", values=values, errors={}, conflict=True), 409
    if result.status == "invalid":
        return render_template("order_form.html", values=values, errors=result.errors), 422
    return render_template("order_success.html", order_id=result.order_id, values=values,
                           duplicate=result.duplicate), 201


@pages.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Liveness, naming the EC2 instance this app runs on, so a deploy can tell its own app from another."""
    return jsonify(status="ok", instance_id=current_app.config["INSTANCE_ID"])


class BadBody(ValueError):
    """The body is not an order-shaped JSON object; the message says why, for the client."""


def _json_body() -> dict[str, Any]:
    """The body as a JSON object, numbers kept as their exact decimal text (1e309 and NaN stay values to reject)."""
    if not request.is_json:
        raise BadBody("the request body must be a JSON object sent with Content-Type: application/json")
    try:
        text = request.get_data(cache=True).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(f"the request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(text, parse_float=str, parse_constant=str)
    except RecursionError:
        raise BadBody(f"the JSON is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        raise BadBody(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadBody("the request body must be a JSON object")
    _check_values(body)
    return body


def _check_values(body: dict[str, Any]) -> None:
    """Refuse nesting deeper than MAX_DEPTH and text that is not valid Unicode (lone surrogates such as \\ud800)."""
    stack: list[tuple[Any, int, str]] = [(body, 1, "")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise BadBody(f"the JSON is nested more than {MAX_DEPTH} levels deep")
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            path = f"{where}.{key}" if where else str(key)
            for text in (key, item):
                if isinstance(text, str) and not _valid_unicode(text):
                    raise BadBody(f"{path} is not valid Unicode text (it holds an unpaired surrogate such as \\ud800)")
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1, path))


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _order_id(body: dict[str, Any]) -> str:
    """The order's id: the body's ``order_id`` or the ``Idempotency-Key`` header (the same if both), else a new one."""
    given = {name: value for name, value in (("order_id", body.get("order_id")),
                                             ("Idempotency-Key", request.headers.get("Idempotency-Key")))
             if value not in (None, "")}
    ids = {}
    for name, value in given.items():
        parsed = _parse_uuid(value) if isinstance(value, str) else None
        if parsed is None:
            raise BadBody(f"{name} must be a UUID such as 3f1c2a9e-8d4b-4c6e-9a8f-1b2c3d4e5f60")
        ids[name] = parsed
    if len(set(ids.values())) > 1:
        raise BadBody("order_id and the Idempotency-Key header name different orders; send one id")
    return next(iter(ids.values()), None) or str(uuid.uuid4())


@api.post("/orders")
def create_order_from_json() -> ResponseReturnValue:
    try:
        body = _json_body()
        order = {**body, "order_id": _order_id(body)}
    except BadBody as exc:
        return jsonify(error=str(exc)), 400
    order_id = order["order_id"]
    location = url_for("api.get_order", order_id=order_id)
    try:
        result = _validator().submit(order)
    except ValidatorUnavailable as exc:
        log.error("order %s not confirmed: %s", order_id, exc)
        return jsonify(error="the order service did not confirm this order; send it again with the same order_id "
                             f"(it is never stored twice), or ask GET {location} whether it is stored",
                       order_id=order_id), 503
    if result.status == "conflict":
        return jsonify(errors=result.errors, order_id=order_id), 409
    if result.status == "invalid":
        return jsonify(errors=result.errors), 422
    status = 200 if result.duplicate else 201
    return jsonify(order_id=result.order_id, duplicate=result.duplicate), status, {"Location": location}


@api.get("/orders/<order_id>")
def get_order(order_id: str) -> ResponseReturnValue:
    parsed = _parse_uuid(order_id)
    if parsed is None:
        return jsonify(error="the order id must be a UUID such as 3f1c2a9e-8d4b-4c6e-9a8f-1b2c3d4e5f60"), 400
    try:
        order = _validator().find(parsed)
    except ValidatorUnavailable as exc:
        log.error("order %s not looked up: %s", parsed, exc)
        return jsonify(error="the order service is unavailable; ask again shortly", order_id=parsed), 503
    if order is None:
        return jsonify(order_id=parsed, stored=False), 404
    return jsonify(order_id=parsed, stored=True, order=order), 200


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    message: str | None
    if isinstance(exc, CSRFError):
        message = "The form expired or was not sent from this site. Reload the page and try again."
    elif exc.code == 413:
        message = f"The request is larger than {MAX_BODY // 1024} KB."
    else:
        message = exc.description
    status = exc.code or 500  # (every HTTPException Flask routes here has its code)
    if _wants_json():
        return jsonify(error=message), status
    return render_template("error.html", code=status, message=message), status


def _unexpected_error(exc: Exception) -> ResponseReturnValue:
    log.exception("unexpected error")
    if _wants_json():
        return jsonify(error="internal error"), 500
    return render_template("error.html", code=500, message="Something went wrong on our side."), 500


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_app().run(host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "5000")), debug=False)
