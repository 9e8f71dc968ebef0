"""order-validator: validate an order; store a valid one in RDS exactly once.

Event: {"customer_name", "product", "quantity", "amount", "order_id"?}
Returns {"status": "invalid", "errors": {...}} or {"status": "accepted", "order_id", "duplicate"}.
Database failures raise, so the caller sees a FunctionError.
"""
from __future__ import annotations

import datetime as dt
import json
import logging

import boto3

from orders_db import Database, secret_name
from validation import Order, validate_order

log = logging.getLogger()
log.setLevel(logging.INFO)

secrets = boto3.client("secretsmanager")
database = Database(secret_name(), lambda sid: secrets.get_secret_value(SecretId=sid)["SecretString"])

INSERT = ("INSERT INTO orders (order_id, customer_name, product, quantity, amount, created_at) "
          "VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE order_id = order_id")


def store_order(cursor, order: Order, now: dt.datetime) -> bool:
    """Insert ``order``; return False when that order_id was already stored (nothing changes then)."""
    cursor.execute(INSERT, (order.order_id, order.customer_name, order.product, order.quantity, order.amount,
                            now.replace(tzinfo=None)))
    return cursor.rowcount == 1


def lambda_handler(event, context):
    order, errors = validate_order(event)
    if order is None:
        log.info(json.dumps({"result": "invalid", "fields": sorted(errors)}))
        return {"status": "invalid", "errors": errors}
    inserted = database.run(lambda cur: store_order(cur, order, dt.datetime.now(dt.timezone.utc)))
    log.info(json.dumps({"result": "accepted", "order_id": order.order_id, "duplicate": not inserted}))
    return {"status": "accepted", "order_id": order.order_id, "duplicate": not inserted}
