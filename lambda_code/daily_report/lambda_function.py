"""daily-delta-processor: the orders of one window as CSV in S3, and the change against the day before.

From an EventBridge scheduled event the window is [time - 24 h, time); from {"start", "end"} that
window. Rows are streamed from a server-side cursor into a temporary file, so memory stays flat
however many orders the window holds. Beside the CSV goes ``<same name>.change.json``: the window's
orders and amount, those of the window before it, and the differences (the day-over-day delta).
The same window always gives the same keys and content.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pymysql
from orders_db import Database, DatabaseError, required_setting, secret_name
from pymysql.connections import Connection
from report import change_key, day_change, previous_window, report_key, report_window, write_csv

log = logging.getLogger()
log.setLevel(logging.INFO)

BUCKET = required_setting("REPORT_BUCKET", "the name of the S3 bucket the reports go to")
PREFIX = os.environ.get("REPORT_PREFIX", "reports/")
FETCH = 5000
QUERY = ("SELECT order_id, customer_name, product, quantity, amount, created_at FROM orders "
         "WHERE created_at >= %s AND created_at < %s ORDER BY created_at, order_id")
TOTALS = "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM orders WHERE created_at >= %s AND created_at < %s"

s3 = boto3.client("s3")
secrets = boto3.client("secretsmanager")
database = Database(secret_name(), lambda sid: secrets.get_secret_value(SecretId=sid)["SecretString"])


def stream_rows(conn: Connection, start: dt.datetime, end: dt.datetime) -> Iterator[tuple[Any, ...]]:
    """Yield the window's rows through an unbuffered (server-side) cursor."""
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(QUERY, (start.replace(tzinfo=None), end.replace(tzinfo=None)))
        while True:
            batch = cur.fetchmany(FETCH)
            if not batch:
                return
            yield from batch


def window_totals(conn: Connection, start: dt.datetime, end: dt.datetime) -> tuple[int, Decimal]:
    """The number of orders and their total amount in [start, end)."""
    with conn.cursor() as cur:
        cur.execute(TOTALS, (start.replace(tzinfo=None), end.replace(tzinfo=None)))
        count, amount = cur.fetchone()
    return int(count), Decimal(amount)


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    start, end = report_window(event)
    key = report_key(start, PREFIX)
    conn = database.connection()
    with tempfile.TemporaryFile("w+b") as spool:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        try:
            rows, total = write_csv(stream_rows(conn, start, end), text)
            previous_rows, previous_total = window_totals(conn, *previous_window(start, end))
            conn.commit()
        except pymysql.err.Error as exc:
            database.close()
            raise DatabaseError(f"reading orders failed: {exc.args[-1] if exc.args else exc}") from None
        text.flush()
        text.detach()  # hand the bytes back without closing the spool file
        spool.seek(0)
        s3.upload_fileobj(spool, BUCKET, key, ExtraArgs={
            "ContentType": "text/csv; charset=utf-8",
            "Metadata": {"window-start": start.isoformat(), "window-end": end.isoformat(), "rows": str(rows)}})
    change = day_change((start, end), rows, total, previous_rows, previous_total)
    s3.put_object(Bucket=BUCKET, Key=change_key(start, PREFIX), Body=json.dumps(change, indent=2).encode(),
                  ContentType="application/json")
    result = {"status": "ok", "bucket": BUCKET, "key": key, "rows": rows, "total_amount": f"{total:.2f}",
              "change_key": change_key(start, PREFIX), "orders_change": change["orders_change"],
              "amount_change": change["amount_change"]}
    log.info(json.dumps(result))
    return result
