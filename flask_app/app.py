"""Orders web app: an order form and a JSON API in front of the order-validator Lambda.

``python3 app.py`` serves it as the tutorial does (HOST, default 0.0.0.0; PORT, default 5000).
In production: ``gunicorn --bind 0.0.0.0:5000 --workers 1 --threads 8 'app:create_app()'``.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validator import ValidatorClient, ValidatorUnavailable  # noqa: E402

MAX_BODY = 16 * 1024
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
    csrf.init_app(app)
    csrf.exempt(api)
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _submit(order: dict[str, Any]):
    return current_app.config["VALIDATOR"].submit(order)


@pages.get("/")
def order_form():
    return render_template("order_form.html", values={}, errors={})


@pages.post("/orders")
def create_order_from_form():
    values = {name: request.form.get(name, "") for name in FIELDS}
    try:
        result = _submit(values)
    except ValidatorUnavailable as exc:
        log.error("order not submitted: %s", exc)
        return render_template("order_form.html", values=values, errors={}, unavailable=True), 503
    if result.status == "invalid":
        return render_template("order_form.html", values=values, errors=result.errors), 422
    return render_template("order_success.html", order_id=result.order_id, values=values,
                           duplicate=result.duplicate), 201


@pages.get("/healthz")
def healthz():
    """Liveness, naming the EC2 instance this app runs on, so a deploy can tell its own app from another."""
    return jsonify(status="ok", instance_id=current_app.config["INSTANCE_ID"])


def _json_body() -> object:
    """The body as JSON, numbers kept as their exact decimal text (1e309 and NaN stay values to reject)."""
    try:
        return json.loads(request.get_data(cache=False), parse_float=str, parse_constant=str)
    except ValueError:
        return None


@api.post("/orders")
def create_order_from_json():
    body = _json_body() if request.is_json else None
    if not isinstance(body, dict):
        return jsonify(error="the request body must be a JSON object"), 400
    try:
        result = _submit(body)
    except ValidatorUnavailable as exc:
        log.error("order not submitted: %s", exc)
        return jsonify(error="the order service is unavailable; try again shortly"), 503
    if result.status == "invalid":
        return jsonify(errors=result.errors), 422
    return jsonify(order_id=result.order_id, duplicate=result.duplicate), 200 if result.duplicate else 201


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _http_error(exc: HTTPException):
    if isinstance(exc, CSRFError):
        message = "The form expired or was not sent from this site. Reload the page and try again."
    elif exc.code == 413:
        message = f"The request is larger than {MAX_BODY // 1024} KB."
    else:
        message = exc.description
    if _wants_json():
        return jsonify(error=message), exc.code
    return render_template("error.html", code=exc.code, message=message), exc.code


def _unexpected_error(exc: Exception):
    log.exception("unexpected error")
    if _wants_json():
        return jsonify(error="internal error"), 500
    return render_template("error.html", code=500, message="Something went wrong on our side."), 500


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_app().run(host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "5000")), debug=False)
