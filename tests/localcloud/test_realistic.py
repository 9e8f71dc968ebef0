"""Time that AWS takes (issue 26, point 10): fast by default; in realistic mode an RDS reboot keeps the instance
``rebooting``, an IAM change reaches authorization and Lambda later, a new interface endpoint is ``pending`` first.
Every delay runs on the lab clock, so the tests set long delays and skip them with an advance: they assert the
sequence of states, never a duration (bench/bench_realistic.py measures those)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pymysql
import pytest
from botocore.exceptions import ClientError

from labkit.localcloud import control
from tests.helpers import Cloud, free_port, stop_test_cloud, until
from tests.helpers.lambdas import LAMBDA_TRUST as TRUST
from tests.helpers.lambdas import create_function
from tests.helpers.network import ask, lab_vpc, probe_function
from tests.helpers.rds import connect_db, create_db, public_db_network

LONG = 3600.0  # seconds of lab time: never passes by itself within a test


def _realistic(cloud, **delays: float) -> dict:
    return control.set_timing(True, delays, home=cloud.home)


def _advance(cloud, seconds: float = LONG + 1) -> None:
    cloud.request("POST", "/_labkit/clock/advance", {"seconds": seconds})


def _status(rds, ident: str) -> str:
    return rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]["DBInstanceStatus"]


def test_fast_by_default_and_switched_through_the_control_api(own_cloud):
    setting = control.cloud_timing(own_cloud.home)
    assert setting["realistic"] is False
    assert set(setting["delays"]) == {"rds_reboot", "rds_create", "iam_propagation", "endpoint_create"}
    assert _realistic(own_cloud, iam_propagation=3)["delays"]["iam_propagation"] == 3
    assert control.set_timing(False, home=own_cloud.home)["realistic"] is False
    with pytest.raises(control.CloudError, match="no delay named 'coffee'"):
        control.set_timing(True, {"coffee": 5}, home=own_cloud.home)
    with pytest.raises(control.CloudError, match="cannot be negative"):
        control.set_timing(True, {"rds_reboot": -1}, home=own_cloud.home)


def test_a_reboot_keeps_the_instance_rebooting_and_down_until_the_delay_has_passed(own_cloud):
    rds = own_cloud.client("rds")
    groups = public_db_network(own_cloud.client("ec2"), rds, "slow-grp")
    db = create_db(rds, "slow-db", "slow-grp", groups)
    _realistic(own_cloud, rds_reboot=LONG)
    assert rds.reboot_db_instance(DBInstanceIdentifier="slow-db")["DBInstance"]["DBInstanceStatus"] == "rebooting"
    time.sleep(3)  # a fast reboot is over by now (about 1 s); a realistic one has only begun
    assert _status(rds, "slow-db") == "rebooting"
    with pytest.raises(pymysql.err.OperationalError):  # the momentary outage: the engine is down meanwhile
        connect_db(db["Endpoint"])
    with pytest.raises(ClientError) as twice:
        rds.reboot_db_instance(DBInstanceIdentifier="slow-db")
    assert twice.value.response["Error"]["Code"] == "InvalidDBInstanceState"
    _advance(own_cloud)  # the delay is on the lab clock
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="slow-db", WaiterConfig={"Delay": 1})
    with connect_db(db["Endpoint"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
    events = [e["Message"] for e in rds.describe_events(SourceIdentifier="slow-db", SourceType="db-instance",
                                                        Duration=180)["Events"]]  # the shutdown is an hour old
    assert events[-2:] == ["DB instance shutdown.", "DB instance restarted."]


SECRETS = '''import boto3
def lambda_handler(event, context):
    try:
        boto3.client("secretsmanager").list_secrets()
        return "ok"
    except Exception as exc:
        return getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
'''
LIST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:ListSecrets",
                                                           "Resource": "*"}]})


def _invoke(cloud, name: str) -> str:
    result = cloud.client("lambda").invoke(FunctionName=name, Payload=b"{}")
    return json.loads(result["Payload"].read())


def test_an_iam_change_reaches_lambda_and_authorization_after_the_delay(own_cloud):
    iam, lam = own_cloud.client("iam"), own_cloud.client("lambda")
    _realistic(own_cloud, iam_propagation=LONG)
    role = iam.create_role(RoleName="fresh-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    assert iam.get_role(RoleName="fresh-role")["Role"]["Arn"] == role  # IAM's own API shows it at once
    with pytest.raises(ClientError) as refused:
        lam.create_function(FunctionName="too-soon", Runtime="python3.12", Role=role, Handler="x.handler",
                            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert refused.value.response["Error"]["Message"] == "The role defined for the function cannot be assumed by Lambda."
    _advance(own_cloud)
    control.set_timing(False, home=own_cloud.home)
    create_function(own_cloud, "needs-a-policy", SECRETS)  # the helpers' own role, without Secrets Manager
    function_role = lam.get_function_configuration(FunctionName="needs-a-policy")["Role"].rsplit("/", 1)[-1]
    assert _invoke(own_cloud, "needs-a-policy") == "AccessDeniedException"
    _realistic(own_cloud, iam_propagation=LONG)
    iam.put_role_policy(RoleName=function_role, PolicyName="list", PolicyDocument=LIST)
    assert _invoke(own_cloud, "needs-a-policy") == "AccessDeniedException"  # not yet: wait and retry
    _advance(own_cloud)
    assert _invoke(own_cloud, "needs-a-policy") == "ok"
    iam.delete_role_policy(RoleName=function_role, PolicyName="list")
    assert _invoke(own_cloud, "needs-a-policy") == "ok"  # a removal takes its time too
    control.set_timing(False, home=own_cloud.home)  # fast again: the records as they are
    assert _invoke(own_cloud, "needs-a-policy") == "AccessDeniedException"


def test_a_new_interface_endpoint_is_pending_and_carries_nothing_until_available(own_cloud):
    ec2 = own_cloud.client("ec2")
    net = lab_vpc(ec2, "10.66")  # with its own Secrets Manager endpoint, made in fast mode: available
    fn = probe_function(own_cloud, "pending-probe", net)
    assert ask(own_cloud, fn, api=["secretsmanager"]) == {"secretsmanager": "ok"}
    ec2.delete_vpc_endpoints(VpcEndpointIds=[net["sm_endpoint"]])
    assert ask(own_cloud, fn, api=["secretsmanager"]) == {"secretsmanager": "ConnectTimeoutError"}
    _realistic(own_cloud, endpoint_create=LONG)
    created = ec2.create_vpc_endpoint(
        VpcId=net["vpc"], VpcEndpointType="Interface", ServiceName="com.amazonaws.us-east-1.secretsmanager",
        SubnetIds=[net["subnet"]["private-a"], net["subnet"]["private-b"]], SecurityGroupIds=[net["sg"]["endpoints"]],
        PrivateDnsEnabled=True)["VpcEndpoint"]
    assert created["State"] == "pending"
    gateway = ec2.create_vpc_endpoint(VpcId=net["vpc"], VpcEndpointType="Gateway", RouteTableIds=[net["private_rt"]],
                                      ServiceName="com.amazonaws.us-east-1.s3")["VpcEndpoint"]
    assert gateway["State"] == "available"  # gateway endpoints are at once, as on AWS
    assert ask(own_cloud, fn, api=["secretsmanager"]) == {"secretsmanager": "ConnectTimeoutError"}
    _advance(own_cloud)
    until(lambda: ec2.describe_vpc_endpoints(VpcEndpointIds=[created["VpcEndpointId"]])["VpcEndpoints"][0]["State"]
          == "available", 10, 0.2, message="the endpoint stayed pending after its delay")
    assert ask(own_cloud, fn, api=["secretsmanager"]) == {"secretsmanager": "ok"}


def test_labkit_cloud_timing_shows_and_switches_the_mode(own_cloud):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "labkit.cli", "cloud", "timing", *args, "--home",
                               str(own_cloud.home)], capture_output=True, text=True, timeout=60)

    shown = cli()
    assert shown.returncode == 0 and shown.stdout.startswith("timing fast: ")
    assert "  iam_propagation  8 s (when realistic)" in shown.stdout
    switched = cli("realistic", "--delay", "iam_propagation=5")
    assert switched.returncode == 0 and switched.stdout.startswith("timing realistic: the cloud takes AWS's time")
    assert "  iam_propagation  5 s\n" in switched.stdout
    assert control.cloud_timing(own_cloud.home) == {"realistic": True, "delays": {
        "rds_reboot": 45.0, "rds_create": 60.0, "iam_propagation": 5.0, "endpoint_create": 60.0}}
    refused = cli("fast", "--delay", "coffee=5")
    assert refused.returncode == 1 and "no delay named 'coffee'" in refused.stderr
    assert control.cloud_timing(own_cloud.home)["realistic"] is True  # a refused change changes nothing
    assert cli("fast").stdout.startswith("timing fast")


def test_a_cloud_started_realistic_takes_its_time_from_the_start(tmp_path):
    home = tmp_path / "home"
    cloud = Cloud(home, control.start_cloud(port=free_port(), home=home, realistic=True, delays={"rds_reboot": 30}))
    try:
        assert control.cloud_timing(home) == {"realistic": True, "delays": {
            "rds_reboot": 30.0, "rds_create": 60.0, "iam_propagation": 8.0, "endpoint_create": 60.0}}
    finally:
        stop_test_cloud(cloud)


def test_the_mode_is_kept_across_a_restart_unless_the_start_says_otherwise(own_cloud, monkeypatch):
    monkeypatch.delenv("LABKIT_REALISTIC", raising=False)
    monkeypatch.delenv("LABKIT_DELAYS", raising=False)
    home, port = own_cloud.home, own_cloud.status.port
    _realistic(own_cloud, iam_propagation=3)  # as notebook 15 does, in the middle of a lesson
    control.stop_cloud(home)
    control.start_cloud(port=port, home=home)  # the next day: the lab as it was
    assert control.cloud_timing(home) == {"realistic": True, "delays": {
        "rds_reboot": 45.0, "rds_create": 60.0, "iam_propagation": 3.0, "endpoint_create": 60.0}}
    control.stop_cloud(home)
    control.start_cloud(port=port, home=home, realistic=False, delays={"rds_reboot": 5})  # the start decides
    assert control.cloud_timing(home) == {"realistic": False, "delays": {
        "rds_reboot": 5.0, "rds_create": 60.0, "iam_propagation": 3.0, "endpoint_create": 60.0}}


def test_an_endpoint_pending_when_the_cloud_stopped_becomes_available_after_the_start(own_cloud):
    """Issue 23 with realistic mode: the wait of a pending endpoint is not lost with the daemon (it stayed pending
    for ever, carrying nothing), and once available it stays so after a kill -9."""
    ec2 = own_cloud.client("ec2")
    net = lab_vpc(ec2, "10.68")
    ec2.delete_vpc_endpoints(VpcEndpointIds=[net["sm_endpoint"]])
    _realistic(own_cloud, endpoint_create=LONG)
    made = ec2.create_vpc_endpoint(
        VpcId=net["vpc"], VpcEndpointType="Interface", ServiceName="com.amazonaws.us-east-1.secretsmanager",
        SubnetIds=[net["subnet"]["private-a"]], SecurityGroupIds=[net["sg"]["endpoints"]])["VpcEndpoint"]
    endpoint = made["VpcEndpointId"]

    def state() -> str:
        return own_cloud.client("ec2").describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["State"]

    assert state() == "pending"
    home, port = own_cloud.home, own_cloud.status.port
    control.stop_cloud(home)
    control.start_cloud(port=port, home=home)
    assert state() == "pending", "its delay (lab time) has not passed: still pending"
    _advance(own_cloud)
    until(lambda: state() == "available", 10, message="the endpoint to become available after the restart")
    time.sleep(1.5)  # a change made outside a request is kept within half a second
    os.kill(control.cloud_status(home).pid, signal.SIGKILL)
    control.start_cloud(port=port, home=home)
    assert state() == "available"
