"""Daemon start to healthy; CreateDBInstance to available; single-row autocommit INSERT rate."""
from __future__ import annotations

import time
from pathlib import Path

import pymysql
from common import client, control, db_server_port, free_port, report, scratch_home


def main() -> None:
    with scratch_home() as home:
        _bench(home)


def _bench(home: Path) -> None:
    started = time.perf_counter()
    status = control.start_cloud(port=free_port(), home=home)
    report("daemon start to healthy", time.perf_counter() - started, "s", "(target <= 3 s)")
    try:
        rds = client(status, "rds")
        started = time.perf_counter()
        rds.create_db_instance(DBInstanceIdentifier="bench-db", Engine="mysql", DBInstanceClass="db.t3.micro",
                               MasterUsername="admin", MasterUserPassword="bench-pass-123", DBName="ordersdb",
                               AllocatedStorage=20)
        while rds.describe_db_instances(DBInstanceIdentifier="bench-db")["DBInstances"][0]["DBInstanceStatus"] \
                != "available":
            time.sleep(0.02)
        report("CreateDBInstance to available", time.perf_counter() - started, "s", "(target <= 5 s)")
        endpoint = rds.describe_db_instances(DBInstanceIdentifier="bench-db")["DBInstances"][0]["Endpoint"]
        # The endpoint is private (no public access), so the benchmark talks to the server behind it.
        port = db_server_port(home, endpoint["Address"], endpoint["Port"])
        conn = pymysql.connect(host="127.0.0.1", port=port, user="admin",
                               password="bench-pass-123", database="ordersdb", autocommit=True)
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(50))")
            n = 2000
            started = time.perf_counter()
            for i in range(n):
                cur.execute("INSERT INTO t (v) VALUES (%s)", (f"row-{i}",))
            elapsed = time.perf_counter() - started
        report("single-row autocommit INSERT rate (pymysql)", n / elapsed, "rows/s")
    finally:
        control.stop_cloud(home)


if __name__ == "__main__":
    main()
