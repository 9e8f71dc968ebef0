"""One lab clock: Lambda code, the instance's processes and the database read it; an advance reaches them at once."""
from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from tests.helpers import until
from tests.helpers.ec2 import launch
from tests.helpers.lambdas import create_function
from tests.helpers.rds import connect_db, create_db, public_db_network

DAY = 86400.0
TIMES = """import os, time

def lambda_handler(event, context):
    time.sleep(0.05)  # a monotonic sleep, as boto3's retries do: must keep working on the lab clock
    return {"now": time.time(), "pid": os.getpid(), "remaining_ms": context.get_remaining_time_in_millis()}
"""


def _lab_now(cloud) -> float:
    return dt.datetime.fromisoformat(cloud.request("GET", "/_labkit/clock")["now"]).timestamp()


def _advance(cloud, seconds: float) -> dict:
    return cloud.request("POST", "/_labkit/clock/advance", {"seconds": seconds})


def _invoke(cloud, name: str) -> dict:
    result = cloud.client("lambda").invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in result, result["Payload"].read()
    return json.loads(result["Payload"].read())


def test_a_warm_worker_reads_the_new_time_right_after_an_advance(own_cloud):
    create_function(own_cloud, "what-time", TIMES, Timeout=30)
    first = _invoke(own_cloud, "what-time")
    assert abs(first["now"] - time.time()) < 5, "before any advance the lab clock is real time"
    _advance(own_cloud, 2 * DAY)
    second = _invoke(own_cloud, "what-time")
    assert second["pid"] == first["pid"], "the same warm worker, not a restarted one"
    assert abs(second["now"] - (time.time() + 2 * DAY)) < 5
    # The deadline the runtime hands the worker is on the worker's clock: the whole timeout remains.
    assert 25_000 < second["remaining_ms"] <= 30_000
    events = own_cloud.client("logs").filter_log_events(logGroupName="/aws/lambda/what-time")["events"]
    report = [e for e in events if e["message"].startswith("REPORT RequestId")][-1]
    assert abs(report["timestamp"] / 1000 - _lab_now(own_cloud)) < 10, "log lines are stamped with lab time"


def test_database_now_and_defaults_follow_the_clock_without_a_restart(own_cloud):
    ec2, rds = own_cloud.client("ec2"), own_cloud.client("rds")
    groups = public_db_network(ec2, rds, "clock-grp")
    db = create_db(rds, "clock-db", "clock-grp", groups)
    conn = connect_db(db["Endpoint"])
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE stamped (id INT PRIMARY KEY, at DATETIME(6) NOT NULL DEFAULT "
                        "CURRENT_TIMESTAMP(6)) ENGINE=InnoDB")
            cur.execute("INSERT INTO stamped (id) VALUES (1)")
            _advance(own_cloud, 3 * DAY)
            cur.execute("INSERT INTO stamped (id) VALUES (2)")
            cur.execute("SELECT UNIX_TIMESTAMP(NOW(6)), UNIX_TIMESTAMP(CURRENT_TIMESTAMP), UNIX_TIMESTAMP(SYSDATE())")
            now, current, sysdate = (float(v) for v in cur.fetchone())
            cur.execute("SELECT TIMESTAMPDIFF(SECOND, (SELECT at FROM stamped WHERE id = 1), "
                        "(SELECT at FROM stamped WHERE id = 2))")
            (gap,) = cur.fetchone()
    finally:
        conn.close()
    lab = _lab_now(own_cloud)
    assert all(abs(value - lab) < 5 for value in (now, current, sysdate)), (now, lab)
    assert 3 * DAY <= gap < 3 * DAY + 60, "the InnoDB default stamped the second row three days later"


def test_a_running_instance_process_reads_the_new_time(own_cloud):
    ticker = ("#!/bin/sh\nnohup python3 -c 'import time\nwhile True:\n"
              "    open(\"now.tmp\", \"w\").write(repr(time.time()))\n"
              "    __import__(\"os\").replace(\"now.tmp\", \"now\")\n"
              "    time.sleep(0.05)' >/dev/null 2>&1 &\n")
    instance = launch(own_cloud, None, ticker)
    now_file = Path(own_cloud.home) / "ec2" / instance / "root" / "now"
    until(now_file.exists, 20, 0.05, message="the instance's process writing the time")
    assert abs(float(now_file.read_text()) - time.time()) < 5
    _advance(own_cloud, DAY)
    time.sleep(0.3)  # a few ticks of the running process, no restart
    assert abs(float(now_file.read_text()) - (time.time() + DAY)) < 5
    own_cloud.client("ec2").terminate_instances(InstanceIds=[instance])


def test_s3_last_modified_is_lab_time_and_reset_returns_to_real_time(own_cloud):
    _advance(own_cloud, 5 * DAY)
    s3 = own_cloud.client("s3")
    s3.create_bucket(Bucket="clock-bucket")
    s3.put_object(Bucket="clock-bucket", Key="k", Body=b"x")
    modified = s3.head_object(Bucket="clock-bucket", Key="k")["LastModified"].timestamp()
    assert abs(modified - (time.time() + 5 * DAY)) < 10
    own_cloud.request("POST", "/_labkit/reset")
    assert abs(_lab_now(own_cloud) - time.time()) < 5
    assert own_cloud.request("GET", "/_labkit/clock")["offset_seconds"] == 0


def test_the_clock_only_moves_forward(cloud):
    try:
        _advance(cloud, -60)
    except Exception as exc:  # control.CloudError carries the daemon's 400 answer
        assert "only moves forward" in str(exc)
    else:
        raise AssertionError("a negative advance was accepted")


def test_a_killed_worker_leaves_nothing_in_dev_shm(cloud):
    before = {p.name for p in Path("/dev/shm").iterdir() if p.name.startswith(("faketime_", "sem.faketime_"))}
    create_function(cloud, "shm-check", TIMES, Timeout=30)
    _invoke(cloud, "shm-check")
    cloud.client("lambda").delete_function(FunctionName="shm-check")  # the worker is killed (SIGKILL)
    after = {p.name for p in Path("/dev/shm").iterdir() if p.name.startswith(("faketime_", "sem.faketime_"))}
    assert after <= before, f"libfaketime segments leaked: {sorted(after - before)}"

