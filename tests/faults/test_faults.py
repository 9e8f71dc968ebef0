"""Faults as on AWS, at small scale against the real local cloud: one part fails while orders come in.

For every scenario: every 2xx order is stored exactly once, no order is stored twice, every order stored
without a 2xx can be retrieved by its id, and the system comes back without anyone acting.
"""
from __future__ import annotations

import psutil
import pytest

from labkit.compute import app_url
from labkit.lookups import describe_instance
from tests.faults import inject as faults
from tests.faults.load import OK, under_fault

COUNT, THREADS = 24, 4


def _rows(provisioned):
    def rows_of(run_id: str) -> list[tuple[str, str]]:
        with provisioned.db_connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT order_id, product FROM orders WHERE customer_name = %s", (run_id,))
            return list(cur.fetchall())
    return rows_of


@pytest.mark.parametrize("kind, recover_within", [
    ("database killed", 30), ("database stalled", 30), ("validator worker killed", 10),
    ("app process killed", 10)])
def test_orders_survive_the_fault(provisioned, kind, recover_within):
    killed: list[int] = []
    inject = faults.injector(kind, provisioned.lab, provisioned.home, killed)
    load, verdict = under_fault(app_url(provisioned.lab), COUNT, THREADS, inject, _rows(provisioned))
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
