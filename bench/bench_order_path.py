"""The order path under load: HTTP -> Flask (the app on the instance) -> Lambda (order-validator) -> MySQL.

Builds a lab (steps 1-10), warms it up, then sends ``--orders`` orders (2,000) on ``--threads`` threads (8), each
thread on one keep-alive connection to the app's public address, as a load tool would. In the same run, the
floor: the same number of single-row autocommit INSERTs of the same rows on the same number of threads, straight
into the lab's database server (a copy of the orders table, dropped afterwards). Prints orders/s, the floor,
their ratio (goal >= 25 %), p50/p99 of an order, and the CPU per order of each process of the lab (the app's
by thread) and of the load generator itself, so that a regression shows where it went. From those, the ceiling:
the orders/s the machine's cores could carry at that CPU per order if every core were busy with the path and
nothing else, and its ratio to the floor (what any tuning of the path's parts could reach at most).
``python bench/bench_order_path.py [--orders N] [--threads T] [--rounds R] [--home DIR]``; with ``--home`` the lab
is kept there, running, and measured again by the next run with the same folder (for profiling).
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import db_server_port, free_port, percentile, scratch_home
from labkit import Lab, teardown
from labkit.compute import app_url
from labkit.localcloud import control
from labkit.localcloud.procs import CLOUD_MARKER, find_marked
from labkit.steps import run_steps

GOAL = 25.0  # per cent of the floor


def order(run_id: str, n: int) -> dict:
    return {"customer_name": run_id, "product": f"item-{n:05d}", "quantity": 1 + n % 5, "amount": f"{1 + n % 90}.50"}


class Client(threading.local):
    """One keep-alive connection per thread to the app (re-opened when the app closes it)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes) -> int:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=90)
            try:
                self.conn.request("POST", path, body, {"Content-Type": "application/json"})
                response = self.conn.getresponse()
                response.read()
                if response.will_close:
                    self.conn.close()
                    self.conn = None
                return response.status
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def send_orders(url: str, count: int, threads: int, run_id: str) -> tuple[float, list[float], collections.Counter]:
    """``count`` orders on ``threads`` threads: the wall time, each order's latency (ms), the status counts."""
    client = Client(url)
    path = urlsplit(url).path.rstrip("/") + "/api/orders"
    latencies: list[float] = []
    statuses: collections.Counter = collections.Counter()

    def one(n: int) -> None:
        body = json.dumps({**order(run_id, n), "order_id": str(uuid.uuid4())}).encode()
        began = time.perf_counter()
        status = client.post(path, body)
        latencies.append((time.perf_counter() - began) * 1000)
        statuses[status] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - started, latencies, statuses


def insert_floor(settings: dict, count: int, threads: int) -> tuple[float, list[float]]:
    """The same rows as single-row autocommit INSERTs on ``threads`` connections, into a copy of the table."""
    def connect():
        return pymysql.connect(autocommit=True, **settings)

    with connect() as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_floor")
        cur.execute("CREATE TABLE bench_floor LIKE orders")
    conns = [connect() for _ in range(threads)]
    latencies: list[float] = []
    insert = ("INSERT INTO bench_floor (order_id, customer_name, product, quantity, amount, created_at) "
              "VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6))")

    def worker(k: int) -> None:
        with conns[k].cursor() as cur:
            for n in range(k, count, threads):
                o = order("floor", n)
                began = time.perf_counter()
                cur.execute(insert, (str(uuid.uuid4()), o["customer_name"], o["product"], o["quantity"], o["amount"]))
                latencies.append((time.perf_counter() - began) * 1000)

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    with connect() as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE bench_floor")
    return elapsed, latencies


def part_of(proc: psutil.Process, daemon_pid: int) -> str:
    if proc.pid == daemon_pid:
        return "cloud daemon"
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    for needle, part in (("mariadbd", "database server"), ("mysqld", "database server"),
                         ("awslambdaric", "Lambda workers"), ("lambda_runtime", "Lambda workers"),
                         ("hypercorn", "app"), ("systemctl", "systemctl shim")):
        if needle in cmd:
            return part
    return "other"


def cpu_snapshot(status: control.CloudStatus) -> tuple[dict[int, tuple[str, float]], dict[str, float]]:
    """CPU seconds of each process of the lab (with its part), and of each of the app's threads by name."""
    procs: dict[int, tuple[str, float]] = {}
    threads: dict[str, float] = collections.defaultdict(float)
    for pid in dict.fromkeys([status.pid, *find_marked(CLOUD_MARKER, status.cloud_id)]):
        try:
            proc = psutil.Process(pid)
            part = part_of(proc, status.pid)
            times = proc.cpu_times()
            procs[pid] = (part, times.user + times.system)
            if part == "app":
                for thread in proc.threads():
                    name = _thread_name(pid, thread.id)
                    threads[name] += thread.user_time + thread.system_time
        except psutil.Error:
            continue
    return procs, dict(threads)


def _thread_name(pid: int, tid: int) -> str:
    try:
        name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    except OSError:
        return "?"
    return "main (event loop)" if tid == pid else f"thread '{name}'"


def cpu_per_order(before, after, count: int) -> tuple[dict[str, float], dict[str, float]]:
    """CPU ms per order by part (processes that started during the run count from 0), and by app thread."""
    by_part: dict[str, float] = collections.defaultdict(float)
    for pid, (part, seconds) in after[0].items():
        by_part[part] += seconds - before[0].get(pid, (part, 0.0))[1]
    by_thread = {name: seconds - before[1].get(name, 0.0) for name, seconds in after[1].items()}
    return ({k: v * 1000 / count for k, v in by_part.items()},
            {k: v * 1000 / count for k, v in by_thread.items() if v > 0})


def db_settings(lab: Lab, home: Path) -> dict:
    secret = json.loads(lab.client("secretsmanager").get_secret_value(SecretId="order-db-secret")["SecretString"])
    port = db_server_port(home, secret["host"], int(secret["port"]))
    return {"host": "127.0.0.1", "port": port, "user": secret["username"], "password": secret["password"],
            "database": secret["dbname"]}


def measure(lab: Lab, home: Path, count: int, threads: int, rounds: int = 1) -> None:
    url = app_url(lab)
    status = control.cloud_status(home)
    settings = db_settings(lab, home)
    send_orders(url, max(50, threads * 10), threads, "bench-warmup")  # warm workers and connections
    print(f"{count} orders on {threads} threads, {rounds} round(s); the floor in the same run, before each round")
    for r in range(1, rounds + 1):
        floor_s, floor_lat = insert_floor(settings, count, threads)
        before, generator = cpu_snapshot(status), time.process_time()
        took, latencies, statuses = send_orders(url, count, threads, f"bench-{uuid.uuid4().hex[:8]}")
        after, generator = cpu_snapshot(status), time.process_time() - generator
        rate, floor = count / took, count / floor_s
        by_part, by_thread = cpu_per_order(before, after, count)
        print(f"== round {r}")
        print(f"order path (HTTP -> Flask -> Lambda -> MySQL)   {rate:9.1f} orders/s   statuses {dict(statuses)}")
        print(f"direct {threads}-thread INSERT floor                   {floor:9.1f} rows/s")
        print(f"ratio                                           {100 * rate / floor:9.1f} %        (goal >= {GOAL:.0f} %)")
        print(f"order latency p50 / p99                         {percentile(latencies, 50):9.1f} / "
              f"{percentile(latencies, 99):.1f} ms   (INSERT p50 {percentile(floor_lat, 50):.2f} ms)")
        print("CPU per order (ms):  " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(by_part.items(), key=lambda kv: -kv[1])))
        print("  the app's threads: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(by_thread.items(), key=lambda kv: -kv[1])))
        lab_ms, generator_ms = sum(by_part.values()), generator * 1000 / count
        cores = psutil.cpu_count() or 1
        ceiling = cores * 1000 / (lab_ms + generator_ms)
        print(f"CPU per order: the lab {lab_ms:.1f} ms, the load generator {generator_ms:.1f} ms; the ceiling on "
              f"{cores} cores {ceiling:.0f} orders/s = {100 * ceiling / floor:.1f} % of the floor")


def build(home: Path) -> Lab:
    spec = {"target": "local", "name": "bench-orders", "cloud_port": free_port(), "app_port": free_port(),
            "home": str(home)}
    lab = Lab(**spec)
    started = time.monotonic()
    run_steps(lab, 1, 10)
    print(f"lab up (steps 1-10) in {time.monotonic() - started:.0f} s", flush=True)
    (home / "bench-lab.json").write_text(json.dumps(spec))
    return lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--home", type=Path, help="keep the lab in this folder and leave it running (a lab kept "
                        "there before is measured again, not rebuilt); stop it with LABKIT_HOME=DIR labkit cloud stop")
    args = parser.parse_args()
    if args.home:
        args.home.mkdir(parents=True, exist_ok=True)
        spec = args.home / "bench-lab.json"
        lab = Lab(**json.loads(spec.read_text())) if spec.is_file() else build(args.home)
        measure(lab, args.home, args.orders, args.threads, args.rounds)
        return
    with scratch_home("labkit-bench-orders-") as home:
        lab = build(home)
        try:
            measure(lab, home, args.orders, args.threads, args.rounds)
        finally:
            try:
                teardown.delete_everything(lab)
            finally:
                control.stop_cloud(home)


if __name__ == "__main__":
    main()
