"""Stopping the cloud ends every process it started: databases, Lambda workers, instance processes."""
from __future__ import annotations

from labkit.localcloud import control
from labkit.localcloud.procs import CLOUD_MARKER, find_marked
from tests.helpers import start_test_cloud
from tests.helpers.ec2 import instance_profile, launch, run_command
from tests.helpers.lambdas import create_function


def test_stop_leaves_no_process(tmp_path):
    cloud = start_test_cloud(tmp_path)
    try:
        rds = cloud.client("rds")
        rds.create_db_instance(DBInstanceIdentifier="c-db", Engine="mysql", DBInstanceClass="db.t3.micro",
                               MasterUsername="admin", MasterUserPassword="pw-123456789", AllocatedStorage=20)
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="c-db", WaiterConfig={"Delay": 1})
        create_function(cloud, "c-fn", "def lambda_handler(e, c):\n    return 1\n")
        cloud.client("lambda").invoke(FunctionName="c-fn")
        instance = launch(cloud, instance_profile(cloud.client("iam"), "c-profile"))
        assert run_command(cloud, instance, ["nohup sleep 300 >/dev/null 2>&1 &"])["Status"] == "Success"
        assert len(find_marked(CLOUD_MARKER, cloud.status.cloud_id)) >= 4  # daemon, database, worker, sleep
    finally:
        control.stop_cloud(cloud.home)
    assert find_marked(CLOUD_MARKER, cloud.status.cloud_id) == []
