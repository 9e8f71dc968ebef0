"""daily-delta-processor over a window of 1,000,000 orders: duration and peak memory (target < 256 MB).

Provisions only what the report needs (steps 1-4, 9, 11, 12) on a throwaway local cloud, loads the rows
directly (this is a benchmark, not the lesson), invokes the function and reads Lambda's REPORT line.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from pathlib import Path

import pymysql
from common import db_server_port, free_port, report, scratch_home

from labkit import Lab, functions, iam
from labkit.database import SCHEMA
from labkit.localcloud import control
from labkit.steps import run_step

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
BATCH = 10_000


def main() -> None:
    with scratch_home() as home:
        _bench(home)


def _bench(home: Path) -> None:
    lab = Lab(target="local", name="bench-lab", cloud_port=free_port(), app_port=free_port(), home=home)
    try:
        for step in (1, 2, 3, 4, 9, 11, 12):
            run_step(lab, step)
        secret = json.loads(lab.client("secretsmanager").get_secret_value(SecretId=iam.SECRET_NAME)["SecretString"])
        port = db_server_port(home, secret["host"], int(secret["port"]))  # the DB is private: its server directly
        conn = pymysql.connect(host="127.0.0.1", port=port, user=secret["username"],
                               password=secret["password"], autocommit=True)
        start = dt.datetime(2021, 6, 1)
        with conn.cursor() as cur:
            for statement in SCHEMA.read_text().split(";"):
                if statement.strip() and not statement.strip().startswith("--"):
                    cur.execute(statement)
            cur.execute("USE ordersdb")
            loading = time.perf_counter()
            for first in range(0, ROWS, BATCH):
                cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, %s, %s)", [
                    (f"00000000-0000-4000-8000-{i:012d}", f"Customer {i % 997}", f"Product {i % 31}", 1 + i % 9,
                     f"{1 + i % 5000}.{i % 100:02d}", start + dt.timedelta(microseconds=i * 80_000))
                    for i in range(first, min(ROWS, first + BATCH))])
        report(f"loaded {ROWS:,} orders", time.perf_counter() - loading, "s")
        started = time.perf_counter()
        result = functions.invoke(lab, iam.REPORT_FUNCTION, {"start": "2021-06-01T00:00:00Z",
                                                               "end": "2021-06-02T00:00:00Z"})
        elapsed = time.perf_counter() - started
        if result.function_error:
            raise SystemExit(f"the report failed: {result.payload}")
        report(f"report of {result.payload['rows']:,} rows (window of 1 day)", elapsed, "s")
        memory = re.search(r"Max Memory Used: (\d+) MB", result.log_tail)
        report("peak memory of the function (Max Memory Used)", float(memory.group(1)) if memory else -1, "MB",
               "(target < 256 MB)")
    finally:
        control.stop_cloud(home)


if __name__ == "__main__":
    main()
