"""Faults under load: 1,500 orders on 8 threads through the app's JSON API while one part fails.

For each scenario it prints the status counts (first attempts, then after clients re-send what had no
answer with the same order id), orders lost (2xx but not stored), duplicated (stored under two ids),
stored without a 2xx (and whether each is retrievable by id), and the seconds until an order succeeds again.
Goal: 0 lost, 0 duplicated; database back within 30 s, app within 10 s.
``python bench/bench_faults.py [--orders N] [--threads T] [--only NAME]``
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import scratch_home
from labkit import Lab, teardown
from labkit.compute import app_url
from labkit.localcloud import control
from labkit.steps import run_steps
from tests.faults.inject import SCENARIOS, injector
from tests.faults.load import under_fault
from tests.helpers import ProvisionedLab, free_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--only", choices=SCENARIOS)
    args = parser.parse_args()
    with scratch_home("labkit-bench-faults-") as home:
        return _bench(home, args)


def _bench(home: Path, args: argparse.Namespace) -> int:
    lab = Lab(target="local", name="bench-faults", cloud_port=free_port(), app_port=free_port(), home=home)
    failed = False
    try:
        started = time.monotonic()
        run_steps(lab, 1, 10)
        print(f"lab up in {time.monotonic() - started:.0f} s; {args.orders} orders on {args.threads} threads per scenario")
        provisioned = ProvisionedLab(lab, home)  # its database through the server's own port: the DB is private

        def rows_of(run_id: str) -> list[tuple[str, str]]:
            with provisioned.db_connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT order_id, product FROM orders WHERE customer_name = %s", (run_id,))
                return list(cur.fetchall())

        print(f"{'scenario':<26}{'first attempts':<34}{'after re-send':<18}{'lost':>5}{'dup':>5}"
              f"{'stored w/o 2xx':>16}{'unretrievable':>15}{'recover s':>11}{'took s':>8}")
        for kind in [args.only] if args.only else SCENARIOS:
            began = time.monotonic()
            load, verdict = under_fault(app_url(lab), args.orders, args.threads, injector(kind, lab, home), rows_of)
            recover = "never" if verdict.recover_seconds is None else f"{verdict.recover_seconds:.1f}"
            first = " ".join(f"{k}:{v}" for k, v in sorted(verdict.first_statuses.items()))
            final = " ".join(f"{k}:{v}" for k, v in sorted(verdict.final_statuses.items()))
            print(f"{kind:<26}{first:<34}{final:<18}{len(verdict.lost):>5}{len(verdict.duplicated):>5}"
                  f"{len(verdict.stored_without_2xx):>16}{len(verdict.not_retrievable):>15}{recover:>11}"
                  f"{time.monotonic() - began:>8.0f}", flush=True)
            failed |= bool(verdict.lost or verdict.duplicated or verdict.not_retrievable
                           or verdict.recover_seconds is None)
    finally:
        try:
            teardown.delete_everything(lab)
        finally:
            control.stop_cloud(home)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
