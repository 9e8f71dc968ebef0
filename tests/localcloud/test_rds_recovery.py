"""RDS recovers a crashed engine by itself, and a reboot restarts it, with RDS's statuses and events."""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests.helpers import until
from tests.helpers.rds import connect_db, create_db, db_status, public_db_network, wait_db_status


def _server_pid(cloud, ident: str) -> int:
    return cloud.request("GET", "/_labkit/health")["services"]["rds"]["instances"][ident]["pid"]


def _statuses_until_available(rds, ident: str, seconds: float = 60) -> list[str]:
    """The statuses the instance goes through until it is available again."""
    seen: list[str] = []

    def back() -> list[str] | None:
        status = db_status(rds, ident)
        if not seen or seen[-1] != status:
            seen.append(status)
        return seen if status == "available" and len(seen) > 1 else None

    return until(back, seconds, 0.05, message=lambda: f"{ident} went through {seen} and never came back")


def _messages(rds, ident: str, **kwargs) -> list[tuple[list[str], str]]:
    events = rds.describe_events(SourceIdentifier=ident, SourceType="db-instance", **kwargs)["Events"]
    return [(e["EventCategories"], e["Message"]) for e in events]


@pytest.fixture()
def database(own_cloud):
    rds = own_cloud.client("rds")
    groups = public_db_network(own_cloud.client("ec2"), rds, "grp")
    db = create_db(rds, "crashy", "grp", groups)
    with connect_db(db["Endpoint"]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB")
        cur.execute("INSERT INTO t VALUES (1)")  # committed (autocommit) before the crash
    return own_cloud, rds, db


def test_a_killed_engine_is_restarted_by_the_cloud_and_committed_rows_survive(database):
    cloud, rds, db = database
    os.kill(_server_pid(cloud, "crashy"), signal.SIGKILL)
    killed_at = time.monotonic()
    seen = _statuses_until_available(rds, "crashy")
    assert seen[-2:] == ["rebooting", "available"], seen
    print(f"database back after {time.monotonic() - killed_at:.1f} s")
    with connect_db(db["Endpoint"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM t")
        assert cur.fetchall() == ((1,),)
    messages = _messages(rds, "crashy")
    assert (["recovery"], "Recovery of the DB instance has started. Recovery time will vary with the amount of "
                          "data to be recovered.") in messages
    assert (["recovery"], "Recovery of the DB instance is complete.") in messages
    assert (["availability"], "DB instance restarted.") in messages
    assert _messages(rds, "crashy", EventCategories=["recovery"]) == [m for m in messages if m[0] == ["recovery"]]


def test_reboot_really_restarts_the_engine(database):
    cloud, rds, db = database
    before = _server_pid(cloud, "crashy")
    answer = rds.reboot_db_instance(DBInstanceIdentifier="crashy")["DBInstance"]
    assert answer["DBInstanceStatus"] == "rebooting"
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="crashy", WaiterConfig={"Delay": 1})
    assert _server_pid(cloud, "crashy") != before
    with connect_db(db["Endpoint"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM t")
        assert cur.fetchall() == ((1,),)
    messages = [m for _, m in _messages(rds, "crashy")]
    assert messages[-2:] == ["DB instance shutdown.", "DB instance restarted."]
    rds.stop_db_instance(DBInstanceIdentifier="crashy")
    wait_db_status(rds, "crashy", "stopped")
    with pytest.raises(rds.exceptions.InvalidDBInstanceStateFault):
        rds.reboot_db_instance(DBInstanceIdentifier="crashy")
    assert "DB instance stopped." in [m for _, m in _messages(rds, "crashy")]
