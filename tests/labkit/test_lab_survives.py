"""Issue 23 on the session's whole lab (steps 1-13): with three tasks done, orders placed and an object uploaded,
`labkit cloud stop` + `start` keep every resource of point 1 (the lab's fingerprint is the same, not a sample of it),
and so does a `kill -9` of the daemon right after an acknowledged request; `labkit check` passes, the tasks stay
passed, the app answers at the same URL and takes orders, old orders are found by id, the functions answer (cold).
A checkpoint of the lab restored into another home is that lab, with the new home's own addresses and keys.

The shared lab is left as the other tests expect it: the tasks are undone at the end.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import urllib.error
import urllib.request
import uuid

import boto3
import psutil
import pytest
from botocore.exceptions import ClientError

from labkit import Lab, checks, compute, iam, tasks
from labkit.localcloud import control
from labkit.localcloud.procs import CLOUD_MARKER, find_marked
from labkit.names import DB_SUBNET_GROUP, bucket_name
from tests.helpers import ProvisionedLab, free_port
from tests.labkit.lab_state import differences, fingerprint

DONE_TASKS = (1, 2, 11)


def _order(lab: Lab, name: str) -> str:
    body = json.dumps({"customer_name": name, "product": "Kept", "quantity": 1, "amount": "3.50"}).encode()
    request = urllib.request.Request(compute.app_url(lab) + "api/orders", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 201
        return json.loads(answer.read())["order_id"]


def _found(lab: Lab, order_id: str) -> bool:
    try:
        with urllib.request.urlopen(compute.app_url(lab) + f"api/orders/{order_id}", timeout=60) as answer:
            return json.loads(answer.read())["stored"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


def _passed(lab: Lab) -> set[int]:
    frame = tasks.tasks_frame(lab)
    return set(frame.loc[frame["passed"], "step"])


def _do_tasks(lab: Lab) -> None:
    """Tasks 1, 2 and 11, as a student does them by hand (each undone at the end: a history read would not be)."""
    ec2, rds, s3 = lab.client("ec2"), lab.client("rds"), lab.client("s3")
    vpc = ec2.describe_vpcs(Filters=lab.tag_filter())["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=lab.tag_filter())["Subnets"]]
    ec2.create_tags(Resources=[vpc, *subnets], Tags=[{"Key": "owner", "Value": "student"}])
    group = rds.describe_db_subnet_groups(DBSubnetGroupName=DB_SUBNET_GROUP)["DBSubnetGroups"][0]
    rds.add_tags_to_resource(ResourceName=group["DBSubnetGroupArn"], Tags=[{"Key": "tier", "Value": "data"}])
    s3.put_bucket_lifecycle_configuration(Bucket=bucket_name(lab), LifecycleConfiguration={"Rules": [
        {"ID": "expire-reports", "Filter": {"Prefix": "reports/"}, "Status": "Enabled", "Expiration": {"Days": 90}}]})


def _undo_tasks(lab: Lab) -> None:
    ec2, rds, s3 = lab.client("ec2"), lab.client("rds"), lab.client("s3")
    vpc = ec2.describe_vpcs(Filters=lab.tag_filter())["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=lab.tag_filter())["Subnets"]]
    ec2.delete_tags(Resources=[vpc, *subnets], Tags=[{"Key": "owner"}, {"Key": "crash"}])
    group = rds.describe_db_subnet_groups(DBSubnetGroupName=DB_SUBNET_GROUP)["DBSubnetGroups"][0]
    rds.remove_tags_from_resource(ResourceName=group["DBSubnetGroupArn"], TagKeys=["tier"])
    s3.delete_bucket_lifecycle(Bucket=bucket_name(lab))


@pytest.fixture(scope="module")
def worked(provisioned: ProvisionedLab):
    """The shared lab after a student's session: three tasks, orders through the app, an uploaded object."""
    lab = provisioned.lab
    expected = _passed(lab) | set(DONE_TASKS)  # with what earlier tests of the session left passed (a history read)
    _do_tasks(lab)
    orders = [_order(lab, f"before the stop {n}") for n in range(3)]
    bucket = lab.client("s3").list_buckets()["Buckets"][0]["Name"]
    lab.client("s3").put_object(Bucket=bucket, Key="uploads/kept.csv", Body=b"id,amount\n1,3.50\n")
    try:
        yield provisioned, orders, expected
    finally:
        _undo_tasks(lab)


def _usable(provisioned: ProvisionedLab, url: str, orders: list[str], passed: set[int]) -> None:
    """What a student does next day: labkit check, labkit tasks, the app, an old order, the functions."""
    lab = provisioned.lab
    lam = lab.client("lambda")  # first: the app's orders would warm the function up
    assert lam.get_function(FunctionName=iam.VALIDATOR_FUNCTION)["Configuration"]["State"] == "Active"
    answer = lam.invoke(FunctionName=iam.VALIDATOR_FUNCTION, LogType="Tail", Payload=json.dumps(
        {"customer_name": "Invoke", "product": "X", "quantity": 1, "amount": "1.00"}).encode())
    assert json.loads(answer["Payload"].read())["status"] == "accepted"
    assert "Init Duration" in base64.b64decode(answer["LogResult"]).decode(), "a restart is a cold start"
    frame = checks.all_checks(lab)
    assert frame["passed"].all(), frame[~frame["passed"]].to_string()
    assert _passed(lab) == passed, tasks.tasks_frame(lab).to_string()
    assert compute.app_url(lab) == url, "the app answers at the same URL"
    assert all(_found(lab, order) for order in orders), "old orders are found by id"
    assert _found(lab, _order(lab, "after the start")), "the app takes orders"


def test_stop_and_start_keep_the_whole_lab(worked):
    provisioned, orders, expected = worked
    lab, home = provisioned.lab, provisioned.home
    url = compute.app_url(lab)
    before = fingerprint(lab, home, provisioned.db_connection)
    passed = _passed(lab)
    assert passed == expected
    assert control.cloud_state(home, audit=True)["audit"] == {}, "no service's file carries a copy of another's records"
    assert control.stop_cloud(home)
    control.start_cloud(port=lab.config.cloud_port, home=home)
    assert differences(before, fingerprint(lab, home, provisioned.db_connection)) == {}
    _usable(provisioned, url, orders, passed)


def test_a_kill_of_the_daemon_loses_nothing_acknowledged(worked):
    provisioned, orders, expected = worked
    lab, home = provisioned.lab, provisioned.home
    url = compute.app_url(lab)
    orders = [*orders, _order(lab, "just before the kill")]
    ec2 = lab.client("ec2")
    vpc = ec2.describe_vpcs(Filters=lab.tag_filter())["Vpcs"][0]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "crash", "Value": "acknowledged"}])
    before = fingerprint(lab, home, provisioned.db_connection)
    passed = _passed(lab)
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "crash", "Value": "the last 2xx"}])
    status = control.cloud_status(home)
    os.kill(status.pid, signal.SIGKILL)  # the daemon only: its database, app and workers are left running
    psutil.Process(status.pid).wait(10)
    assert find_marked(CLOUD_MARKER, status.cloud_id), "the crashed daemon's processes are still there"
    control.start_cloud(port=lab.config.cloud_port, home=home)
    assert not find_marked(CLOUD_MARKER, status.cloud_id), "the next start ended them"
    after = fingerprint(lab, home, provisioned.db_connection)
    changed = differences(before, after)
    assert list(changed) == ["vpcs"], changed  # the one change after the first look: the last tag
    assert {"Key": "crash", "Value": "the last 2xx"} in next(v for v in after["vpcs"] if v["VpcId"] == vpc)["Tags"]
    _usable(provisioned, url, orders, passed)


def test_a_checkpoint_restored_into_another_home_is_the_lab_with_that_home_s_addresses_and_keys(worked, tmp_path):
    provisioned, orders, expected = worked
    lab, home = provisioned.lab, provisioned.home
    made = control.snapshot_cloud("survives", home)
    print(f"checkpoint: {made['bytes'] / 2**20:.1f} MiB in {made['seconds']:.1f} s (pack {made['pack_seconds']} s)")
    other_home = tmp_path / "other-home"
    status = control.restore_cloud(made["path"], other_home, port=free_port())
    try:
        other = Lab(target="local", name=lab.name, cloud_port=status.port, app_port=lab.config.app_port,
                    home=other_home)
        frame = checks.all_checks(other)
        assert frame["passed"].all(), frame[~frame["passed"]].to_string()
        assert _passed(other) == expected
        block = control.cloud_health(other_home)["services"]["network"]["block"]
        assert block != control.cloud_health(home)["services"]["network"]["block"]
        prefix = block.rsplit(".", 1)[0] + "."
        instance = compute.describe_instance(other)
        secret = json.loads(other.client("secretsmanager").get_secret_value(SecretId=iam.SECRET_NAME)["SecretString"])
        db = other.client("rds").describe_db_instances()["DBInstances"][0]
        assert instance["PublicIpAddress"].startswith(prefix) and db["Endpoint"]["Address"].startswith(prefix)
        assert secret["host"] == db["Endpoint"]["Address"], "the app finds the restored lab's database"
        assert instance["InstanceId"] == compute.describe_instance(lab)["InstanceId"], "ids and ARNs stay"
        assert all(_found(other, order) for order in orders), "the checkpoint's orders, through its app"
        assert _found(other, _order(other, "in the restored lab"))
        foreign = boto3.client("sts", endpoint_url=status.endpoint, region_name="us-east-1",
                               **control.admin_credentials(home))
        with pytest.raises(ClientError) as refused:
            foreign.get_caller_identity()
        assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId", "the checkpoint's keys do not work"
        assert other.client("sts").get_caller_identity()["Arn"].endswith(":user/lab-admin")
        assert _found(lab, orders[0]) and not _found(lab, str(uuid.uuid4())), "the original lab goes on"
    finally:
        control.stop_cloud(other_home)
        assert not find_marked(CLOUD_MARKER, status.cloud_id)
