"""Faults as on AWS, at small scale against the real local cloud: one part fails while orders come in.

For every scenario: every 2xx order is stored exactly once, no order is stored twice, every order stored
without a 2xx can be retrieved by its id, and the system comes back without anyone acting.
"""
from __future__ import annotations

import time

import psutil
import pytest

from labkit.compute import app_url
from labkit.lookups import describe_instance
from labkit.names import VALIDATOR_FUNCTION, db_instance_id
from tests.faults import inject as faults
from tests.faults.load import OK, under_fault

COUNT, THREADS = 24, 4
STALL_SECONDS = 38  # past the validator's 30 s timeout


def _rows(provisioned):
    def rows_of(run_id: str) -> list[tuple[str, str]]:
        with provisioned.db_connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT order_id, product FROM orders WHERE customer_name = %s", (run_id,))
            return list(cur.fetchall())
    return rows_of


def _inject(kind: str, provisioned, killed: list[int] | None = None):
    lab, home = provisioned.lab, provisioned.home
    killed = [] if killed is None else killed

    def inject() -> float:
        if kind == "database killed":
            faults.kill_database(db_instance_id(lab), home)
        elif kind == "database stalled":
            faults.stall_database(db_instance_id(lab), STALL_SECONDS, home)
            return time.monotonic() + STALL_SECONDS
        elif kind == "validator worker killed":
            deadline = time.monotonic() + 10
            while not faults.kill_function_workers(VALIDATOR_FUNCTION, home) and time.monotonic() < deadline:
                time.sleep(0.05)
        elif kind == "app process killed":  # one hypercorn process: systemd starts it again after RestartSec
            killed.append(faults.kill_app(describe_instance(lab)["InstanceId"], home))
        return time.monotonic()
    return inject


@pytest.mark.parametrize("kind, recover_within", [
    ("database killed", 30), ("database stalled", 30), ("validator worker killed", 10),
    ("app process killed", 10)])
def test_orders_survive_the_fault(provisioned, kind, recover_within):
    killed: list[int] = []
    load, verdict = under_fault(app_url(provisioned.lab), COUNT, THREADS, _inject(kind, provisioned, killed),
                                _rows(provisioned))
    print(f"{kind}: {verdict.line()}")
    assert verdict.recover_seconds is not None and verdict.recover_seconds < recover_within, verdict.line()
    assert verdict.lost == [] and verdict.duplicated == [], verdict.line()
    assert verdict.not_retrievable == [], verdict.line()
    assert all(o.final in OK for o in load.outcomes), verdict.line()  # re-sent with its id, each one is placed
    stored = _rows(provisioned)(load.run_id)
    assert sorted(i for i, _ in stored) == sorted(o.order_id for o in load.outcomes)  # each exactly once
    if killed:  # the app came back as a new process that systemd started, not the one killed
        restarted = faults.app_main_pid(describe_instance(provisioned.lab)["InstanceId"], home=provisioned.home)
        assert restarted not in killed and psutil.pid_exists(restarted)
