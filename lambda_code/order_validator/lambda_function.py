"""order-validator: validate an order; store a valid one in RDS exactly once; tell whether an order is stored.

Event, to place an order: {"customer_name", "product", "quantity", "amount", "order_id"?}
  -> {"status": "invalid", "errors": {...}}
   | {"status": "accepted", "order_id", "duplicate"}      (duplicate: that id was already stored, same order)
   | {"status": "conflict", "order_id", "errors": {...}}  (that id was already used for a different order)
Event, to look an order up: {"find_order_id": "<uuid>"}
  -> {"status": "found", "order": {...}} | {"status": "not_found", "order_id"} | {"status": "invalid", "errors"}
The caller fixes ``order_id`` before its first attempt and sends the same one on every retry, so a retry
after a timeout never stores a second copy. Database failures raise, so the caller sees a FunctionError.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

import boto3
from orders_db import Database, secret_name
from pymysql.cursors import Cursor
from validation import Order, parse_minimum, parse_order_id, validate_order

log = logging.getLogger()
log.setLevel(logging.INFO)

# The smallest amount an order may have (empty: anything above 0); a bad value stops the function at init.
MIN_ORDER_AMOUNT = parse_minimum(os.environ.get("MIN_ORDER_AMOUNT"))
secrets = boto3.client("secretsmanager")
database = Database(secret_name(), lambda sid: secrets.get_secret_value(SecretId=sid)["SecretString"])

INSERT = ("INSERT INTO orders (order_id, customer_name, product, quantity, amount, created_at) "
          "VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE order_id = order_id")
SELECT = "SELECT order_id, customer_name, product, quantity, amount, created_at FROM orders WHERE order_id = %s"


def store_order(cursor: Cursor, order: Order, now: dt.datetime) -> str:
    """Insert ``order`` once: "stored", "duplicate" (same id, same order) or "conflict" (same id, other order)."""
    cursor.execute(INSERT, (order.order_id, order.customer_name, order.product, order.quantity, order.amount,
                            now.replace(tzinfo=None)))
    if cursor.rowcount == 1:
        return "stored"
    cursor.execute(SELECT, (order.order_id,))
    row = cursor.fetchone()
    same = row is not None and tuple(row[1:5]) == (order.customer_name, order.product, order.quantity, order.amount)
    return "duplicate" if same else "conflict"


def find_order(cursor: Cursor, order_id: str) -> dict[str, Any] | None:
    cursor.execute(SELECT, (order_id,))
    row = cursor.fetchone()
    if row is None:
        return None
    return {"order_id": row[0], "customer_name": row[1], "product": row[2], "quantity": row[3],
            "amount": str(row[4]), "created_at": row[5].isoformat() + "Z"}


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and "find_order_id" in event:
        return _find(event["find_order_id"])
    order, errors = validate_order(event, MIN_ORDER_AMOUNT)
    if order is None:
        log.info(json.dumps({"result": "invalid", "fields": sorted(errors)}))
        return {"status": "invalid", "errors": errors}
    outcome = database.run(lambda cur: store_order(cur, order, dt.datetime.now(dt.timezone.utc)))
    log.info(json.dumps({"result": outcome, "order_id": order.order_id}))
    if outcome == "conflict":
        return {"status": "conflict", "order_id": order.order_id,
                "errors": {"order_id": "this order id was already used for a different order"}}
    return {"status": "accepted", "order_id": order.order_id, "duplicate": outcome == "duplicate"}


def _find(value: Any) -> dict[str, Any]:
    order_id, error = parse_order_id(value) if value else (None, "order_id is required")
    if order_id is None:  # parse_order_id gives an id or an error
        return {"status": "invalid", "errors": {"order_id": error}}
    order = database.run(lambda cur: find_order(cur, order_id))
    return {"status": "found", "order": order} if order else {"status": "not_found", "order_id": order_id}
