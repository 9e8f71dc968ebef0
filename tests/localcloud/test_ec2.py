"""EC2 instances run user data and SSM commands in a sandbox; stop ends their processes."""
from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from labkit.errors import CloudError
from labkit.localcloud import control
from labkit.localcloud.procs import INSTANCE_MARKER, find_marked
from tests.helpers import free_port, until
from tests.helpers.ec2 import instance_profile, launch, local_get, run_command


def _get(url: str, seconds: float = 10) -> int:
    """The status of a GET, retried until the server answers."""
    def status() -> int:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status

    return until(status, seconds, ignoring=(urllib.error.URLError, ConnectionError))


def _refused(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_user_data_runs_and_a_server_on_the_instance_loopback_answers_only_the_instance(cloud):
    """On AWS an instance's 127.0.0.1 (and ::1) is its own: its processes reach a server bound there, nothing
    outside the instance does (from outside, its loopback does not exist)."""
    port, port6 = free_port(), free_port()
    user_data = (f"#!/bin/bash\necho written > $HOME/proof.txt\n"
                 f"nohup python3 -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1 &\n"
                 f"nohup python3 -m http.server {port6} --bind ::1 >/dev/null 2>&1 &\n")
    ec2 = cloud.client("ec2")
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]  # default VPC's
    instance_id = launch(cloud, instance_profile(cloud.client("iam"), "ud-profile"), user_data, SecurityGroupIds=[group])
    described = cloud.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    block = cloud.request("GET", "/_labkit/health")["services"]["network"]["block"]
    public = described["PublicIpAddress"]
    assert ipaddress.ip_address(public) in ipaddress.ip_network(block)  # the lab's own
    assert described["PublicDnsName"] == ""  # no name would resolve to it on this machine
    assert (cloud.home / "ec2" / instance_id / "root" / "proof.txt").read_text() == "written\n"
    assert local_get(cloud, instance_id, f"http://127.0.0.1:{port}/", f"http://localhost:{port}/",
                     f"http://[::1]:{port6}/").split() == ["200", "200", "200"]
    # Your computer's loopback is not the instance's, and even with the port open to the internet the public IP
    # has no such port, for your computer as for the instance itself (its public IP is not its loopback).
    assert _refused(("127.0.0.1", port)) and _refused(("::1", port6))
    rule = [{"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]} for p in (port, port6)]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=rule)
    try:
        assert _refused((public, port)) and _refused((public, port6))
        assert local_get(cloud, instance_id, f"http://{public}:{port}/", seconds=0) == "ConnectionRefusedError"
    finally:
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=rule)

    cloud.client("ec2").stop_instances(InstanceIds=[instance_id])
    assert not find_marked(INSTANCE_MARKER, instance_id)  # stop ended the servers


def test_ssm_command_output_and_failure(cloud):
    instance_id = launch(cloud, instance_profile(cloud.client("iam"), "ssm-profile"))
    ok = run_command(cloud, instance_id, ["echo hello from $(hostname -s >/dev/null; echo the instance)", "echo done"])
    assert ok["Status"] == "Success" and ok["ResponseCode"] == 0
    assert ok["StandardOutputContent"] == "hello from the instance\ndone\n"
    failed = run_command(cloud, instance_id, ["echo oops >&2", "exit 7"])
    assert failed["Status"] == "Failed" and failed["ResponseCode"] == 7
    assert failed["StandardErrorContent"] == "oops\n"
    listed = cloud.client("ssm").list_command_invocations(InstanceId=instance_id, Details=True)["CommandInvocations"]
    assert {i["Status"] for i in listed} == {"Success", "Failed"}


def test_background_process_survives_the_command_and_a_service_restarts_on_start(cloud):
    """The app port follows the instance to the new public IP a stop and start gives it (as on AWS)."""
    ec2 = cloud.client("ec2")
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]  # default VPC's
    instance_id = launch(cloud, instance_profile(cloud.client("iam"), "svc-profile"), SecurityGroupIds=[group])
    port = free_port()
    unit = (f"[Unit]\nDescription=web\n[Service]\nWorkingDirectory=/tmp\n"
            f"ExecStart=python3 -m http.server {port}\n[Install]\nWantedBy=multi-user.target\n")
    first = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    rule = [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=rule)
    try:
        result = run_command(cloud, instance_id, [f"cat > $HOME/web.service <<'EOF'\n{unit}EOF",
                                                  "systemctl enable --now $HOME/web.service", "systemctl is-active web"])
        assert result["Status"] == "Success", result["StandardErrorContent"]
        assert _get(f"http://{first}:{port}/") == 200
        ec2.stop_instances(InstanceIds=[instance_id])
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[instance_id], WaiterConfig={"Delay": 1})
        assert not find_marked(INSTANCE_MARKER, instance_id)
        assert _refused((first, port))  # a stopped instance has no public IP
        ec2.start_instances(InstanceIds=[instance_id])
        ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig={"Delay": 1})
        second = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
        assert second != first
        assert _get(f"http://{second}:{port}/") == 200  # the enabled service came back, at the new address
        assert _refused((first, port))
    finally:
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=rule)
    ec2.terminate_instances(InstanceIds=[instance_id])
    assert not (cloud.home / "ec2" / instance_id).exists()


def test_instance_without_ssm_role_is_not_managed(cloud):
    instance_id = launch(cloud, instance_profile(cloud.client("iam"), "no-ssm", ssm=False))
    ssm = cloud.client("ssm")
    with pytest.raises(ssm.exceptions.InvalidInstanceId):
        ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[instance_id],
                         Parameters={"commands": ["true"]})
    managed = ssm.describe_instance_information()["InstanceInformationList"]
    assert instance_id not in {i["InstanceId"] for i in managed}


def test_cloud_logs_shows_the_user_data_output(cloud):
    import subprocess
    import sys

    instance_id = launch(cloud, None, "#!/bin/sh\necho configuring the instance\n")
    path = cloud.home / "ec2" / instance_id / "var/lib/cloud/instance/boot-finished"
    until(path.exists, 10, 0.05)
    out = subprocess.run([sys.executable, "-m", "labkit.cli", "cloud", "logs", instance_id, "--home", str(cloud.home)],
                         capture_output=True, text=True, check=True).stdout
    assert "configuring the instance" in out and "exit code 0" in out
    for unknown in ("i-0000000000000000f", "..", "not-an-instance"):  # the cloud answers for its sandboxes only
        assert control.user_data_log(unknown, cloud.home) is None
    with pytest.raises(CloudError, match="404"):
        control.user_data_log("../../logs", cloud.home)


def test_instance_types_are_moto_s_own_read_when_first_described(cloud):
    """moto_ondemand reads the instance type catalogue when DescribeInstanceTypes first asks: moto's data."""
    from moto.utilities.utils import load_resource

    catalogue = load_resource("ec2/resources/instance_types.json")
    ec2 = cloud.client("ec2")
    described = ec2.describe_instance_types(InstanceTypes=["t3.micro", "m5.large"])["InstanceTypes"]
    assert {(t["InstanceType"], t["VCpuInfo"]["DefaultVCpus"], t["MemoryInfo"]["SizeInMiB"]) for t in described} == {
        (name, catalogue[name]["VCpuInfo"]["DefaultVCpus"], catalogue[name]["MemoryInfo"]["SizeInMiB"])
        for name in ("t3.micro", "m5.large")}
    listed = {t["InstanceType"] for page in ec2.get_paginator("describe_instance_types").paginate(
        Filters=[{"Name": "instance-type", "Values": ["t3.*"]}]) for t in page["InstanceTypes"]}
    assert listed == {name for name in catalogue if name.startswith("t3.")}
    with pytest.raises(ClientError) as unknown:
        ec2.describe_instance_types(InstanceTypes=["t3.nonesuch"])
    assert unknown.value.response["Error"]["Code"] == "InvalidInstanceType"


def test_instance_type_offerings_are_moto_s_own_read_per_region(cloud):
    """The daemon reads each region's offerings when first asked (not every region's at start): same answers."""
    from moto.utilities.utils import load_resource

    TYPES = ("t3.micro", "m5.large")
    for region, location_type in (("us-east-1", "availability-zone"), ("us-east-1", "region")):
        ec2 = boto3.client("ec2", endpoint_url=cloud.endpoint, region_name=region,
                           **control.admin_credentials(cloud.home))
        pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType=location_type, Filters=[{"Name": "instance-type", "Values": list(TYPES)}])
        seen = {(o["InstanceType"], o["Location"]) for page in pages for o in page["InstanceTypeOfferings"]}
        files = load_resource(f"ec2/resources/instance_type_offerings/{location_type}/{region}.json")
        assert seen == {(o["InstanceType"], o["Location"]) for o in files if o["InstanceType"] in TYPES} and seen
    with pytest.raises(ClientError) as refused:  # the placement check reads us-east-1's zones
        cloud.client("ec2").run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                          Placement={"AvailabilityZone": "eu-west-1a"})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
