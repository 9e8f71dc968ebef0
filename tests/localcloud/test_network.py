"""The VPC is enforced: security groups, routes, endpoints and public access decide every connection.

Each test breaks a path on purpose and asserts AWS's symptom: the SYN goes unanswered, so the client's
own connect() times out (pymysql 2003 "(timed out)", botocore ConnectTimeoutError, "Task timed out").
"""
from __future__ import annotations

import json
import socket
import urllib.request
import uuid

import pymysql
import pytest
from botocore.exceptions import ClientError

from tests.helpers import free_port, http_status, until
from tests.helpers.ec2 import instance_profile, local_get, run_command
from tests.helpers.network import CALLS, allow, ask, lab_db, lab_vpc, probe_function
from tests.helpers.network import NET_DB_PASSWORD as PASSWORD


@pytest.fixture(scope="module")
def net(cloud):
    return lab_vpc(cloud.client("ec2"), "10.61")


@pytest.fixture(scope="module")
def private_db(cloud, net):
    endpoint = lab_db(cloud, net, "net-private-db")
    yield endpoint
    cloud.client("rds").delete_db_instance(DBInstanceIdentifier="net-private-db", SkipFinalSnapshot=True)


def test_endpoints_are_the_labs_own_addresses(cloud, private_db):
    assert private_db["Address"].startswith("127.") and private_db["Address"] != "127.0.0.1"
    assert private_db["Port"] == 3306


def test_db_is_reached_only_through_its_security_group(cloud, net, private_db):
    ec2 = cloud.client("ec2")
    fn = probe_function(cloud, f"net-db-{uuid.uuid4().hex[:6]}", net)
    target = [[private_db["Address"], private_db["Port"]]]
    key = f"{private_db['Address']}:{private_db['Port']}"
    assert ask(cloud, fn, tcp=target)[key] == "connected"
    allow(ec2, net["sg"]["rds"], 3306, group=net["sg"]["lambda"], revoke=True)  # takes effect at once
    try:
        assert ask(cloud, fn, tcp=target)[key] == "timed out"
        allow(ec2, net["sg"]["rds"], 3306, cidr="10.61.0.0/16")  # a CIDR holding the Lambda's private address
        assert ask(cloud, fn, tcp=target)[key] == "connected"
        allow(ec2, net["sg"]["rds"], 3306, cidr="10.61.0.0/16", revoke=True)
    finally:
        allow(ec2, net["sg"]["rds"], 3306, group=net["sg"]["lambda"])
    assert ask(cloud, fn, tcp=target)[key] == "connected"


def test_your_computer_times_out_on_a_private_db(private_db):
    with pytest.raises(pymysql.err.OperationalError) as caught:
        pymysql.connect(host=private_db["Address"], port=private_db["Port"], user="admin", password=PASSWORD,
                        connect_timeout=2)
    assert caught.value.args[0] == 2003 and "timed out" in caught.value.args[1]


def test_a_lambda_outside_the_vpc_reaches_services_but_no_private_db(cloud, private_db):
    fn = probe_function(cloud, "net-no-vpc", None)
    out = ask(cloud, fn, tcp=[[private_db["Address"], private_db["Port"]]], api=["secretsmanager", "sts"])
    assert out == {f"{private_db['Address']}:{private_db['Port']}": "timed out", "secretsmanager": "ok", "sts": "ok"}


def test_public_db_is_reached_from_your_computer_only_when_its_group_allows(cloud, net):
    ec2 = cloud.client("ec2")
    endpoint = lab_db(cloud, net, "net-public-db", public=True)
    try:
        with pytest.raises(pymysql.err.OperationalError, match="timed out"):  # the group allows only lambda-sg
            pymysql.connect(host=endpoint["Address"], port=endpoint["Port"], user="admin", password=PASSWORD,
                            connect_timeout=2)
        # Your address /32 (what GET /_labkit/checkip answers, as checkip.amazonaws.com on AWS) opens it, as
        # 0.0.0.0/0 does; another /32 leaves it dropped; a revoke closes it at once.
        mine = urllib.request.urlopen(f"{cloud.endpoint}/_labkit/checkip", timeout=5).read().decode().strip()
        assert mine == "127.0.0.1"
        for cidr, other in ((f"{mine}/32", "203.0.113.7/32"), ("0.0.0.0/0", None)):
            allow(ec2, net["sg"]["rds"], 3306, cidr=cidr)
            try:
                with pymysql.connect(host=endpoint["Address"], port=endpoint["Port"], user="admin",
                                     password=PASSWORD, connect_timeout=2) as conn, conn.cursor() as cur:
                    cur.execute("SELECT 1")
                    assert cur.fetchone() == (1,)
                if other:
                    allow(ec2, net["sg"]["rds"], 3306, cidr=other)
            finally:
                allow(ec2, net["sg"]["rds"], 3306, cidr=cidr, revoke=True)
            try:
                with pytest.raises(pymysql.err.OperationalError, match="timed out"):
                    pymysql.connect(host=endpoint["Address"], port=endpoint["Port"], user="admin",
                                    password=PASSWORD, connect_timeout=2)
            finally:
                if other:
                    allow(ec2, net["sg"]["rds"], 3306, cidr=other, revoke=True)
    finally:
        cloud.client("rds").delete_db_instance(DBInstanceIdentifier="net-public-db", SkipFinalSnapshot=True)


def test_each_way_out_of_a_private_subnet(cloud, net):
    ec2 = cloud.client("ec2")
    fn = probe_function(cloud, "net-ways-out", net)
    # The interface endpoint carries Secrets Manager; nothing carries S3 or STS.
    assert ask(cloud, fn, api=["secretsmanager", "s3", "sts"]) == {
        "secretsmanager": "ok", "s3": "ConnectTimeoutError", "sts": "ConnectTimeoutError"}
    # An S3 gateway endpoint on the private route table carries S3 only.
    gateway = ec2.create_vpc_endpoint(VpcId=net["vpc"], VpcEndpointType="Gateway",
                                      ServiceName="com.amazonaws.us-east-1.s3",
                                      RouteTableIds=[net["private_rt"]])["VpcEndpoint"]["VpcEndpointId"]
    assert ask(cloud, fn, api=["s3", "sts"]) == {"s3": "ok", "sts": "ConnectTimeoutError"}
    ec2.delete_vpc_endpoints(VpcEndpointIds=[gateway])
    assert ask(cloud, fn, api=["s3"]) == {"s3": "ConnectTimeoutError"}
    # A NAT gateway route carries everything.
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=net["subnet"]["public"], AllocationId=eip)["NatGateway"]["NatGatewayId"]
    ec2.create_route(RouteTableId=net["private_rt"], DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    try:
        assert ask(cloud, fn, api=["s3", "sts"]) == {"s3": "ok", "sts": "ok"}
        # Private DNS sends Secrets Manager to the endpoint even with a NAT route: its group decides.
        allow(ec2, net["sg"]["endpoints"], 443, group=net["sg"]["lambda"], revoke=True)
        assert ask(cloud, fn, api=["secretsmanager", "sts"]) == {
            "secretsmanager": "ConnectTimeoutError", "sts": "ok"}
        allow(ec2, net["sg"]["endpoints"], 443, group=net["sg"]["lambda"])
    finally:
        ec2.delete_route(RouteTableId=net["private_rt"], DestinationCidrBlock="0.0.0.0/0")
        ec2.delete_nat_gateway(NatGatewayId=nat)
    assert ask(cloud, fn, api=["sts"]) == {"sts": "ConnectTimeoutError"}


def test_a_lambda_in_a_public_subnet_has_no_internet(cloud, net):
    fn = probe_function(cloud, "net-public-lambda", net, subnets=("public",))
    assert ask(cloud, fn, api=["sts", "lambda"]) == {"sts": "ConnectTimeoutError", "lambda": "ConnectTimeoutError"}


def test_a_blocked_call_ends_in_the_lambda_timeout(cloud, net):
    ec2 = cloud.client("ec2")
    fn = probe_function(cloud, "net-timeout", net, timeout=3)
    allow(ec2, net["sg"]["endpoints"], 443, group=net["sg"]["lambda"], revoke=True)
    try:
        result = cloud.client("lambda").invoke(FunctionName=fn, Payload=b'{"hang": true}')
        payload = json.loads(result["Payload"].read())
        assert result["FunctionError"] == "Unhandled"
        assert payload["errorMessage"].endswith("Task timed out after 3.00 seconds")
    finally:
        allow(ec2, net["sg"]["endpoints"], 443, group=net["sg"]["lambda"])


def test_private_dns_covers_public_instances_too(cloud, net):
    """Issue 13 item 1: the instance's Secrets Manager calls go to the endpoint, whose group must allow it."""
    ec2 = cloud.client("ec2")
    profile = instance_profile(cloud.client("iam"), "net-instance-profile")
    cloud.client("iam").put_role_policy(RoleName=profile, PolicyName="calls", PolicyDocument=CALLS)
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 IamInstanceProfile={"Name": profile}, NetworkInterfaces=[{
                                     "DeviceIndex": 0, "SubnetId": net["subnet"]["public"],
                                     "Groups": [net["sg"]["ec2"]], "AssociatePublicIpAddress": True}]
                                 )["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance], WaiterConfig={"Delay": 1})
    script = ("python3 -c \"import boto3; from botocore.config import Config; "
              "c = Config(connect_timeout=1.5, retries={'max_attempts': 1}); "
              "[print(s, end=' ') or print('ok' if getattr(boto3.client(s, config=c), m)() else '') "
              "for s, m in (('sts', 'get_caller_identity'), ('secretsmanager', 'list_secrets'))]\"")
    try:
        blocked = run_command(cloud, instance, [script])
        assert blocked["StandardOutputContent"].startswith("sts ok")
        assert "ConnectTimeoutError" in blocked["StandardErrorContent"]
        allow(ec2, net["sg"]["endpoints"], 443, group=net["sg"]["ec2"])
        allowed = run_command(cloud, instance, [script])
        assert allowed["StandardOutputContent"].split() == ["sts", "ok", "secretsmanager", "ok"], allowed
    finally:
        ec2.terminate_instances(InstanceIds=[instance])


def test_the_app_port_opens_at_the_public_ip_as_the_instance_group_says(cloud, net):
    """Issue 11 point 2: your computer reaches an instance's port only through its public IP, an internet
    gateway route and a rule open to the internet; otherwise the request times out."""
    ec2, port = cloud.client("ec2"), free_port()
    profile = instance_profile(cloud.client("iam"), "net-app-profile")
    instance = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro", IamInstanceProfile={"Name": profile},
        UserData=f"#!/bin/sh\nnohup python3 -m http.server {port} >/dev/null 2>&1 &\n",  # binds 0.0.0.0, as apps do
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": net["subnet"]["public"], "Groups": [net["sg"]["ec2"]],
                            "AssociatePublicIpAddress": True}])["Instances"][0]
    public = instance["PublicIpAddress"]
    assert public.startswith("127.") and public != "127.0.0.1"
    url = f"http://{public}:{port}/"
    allow(ec2, net["sg"]["ec2"], port, cidr="0.0.0.0/0")
    try:
        until(lambda: http_status(url, 5) == 200, 60)  # until the server has started
        assert http_status(url, 10) == 200
        # On the instance, 127.0.0.1 reaches its own server, as on a real machine.
        local = run_command(cloud, instance["InstanceId"], [
            f"python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/').status)\""])
        assert local["StandardOutputContent"] == "200\n", local
    finally:
        allow(ec2, net["sg"]["ec2"], port, cidr="0.0.0.0/0", revoke=True)
    try:
        assert http_status(url) == "timed out"  # the group has no rule for the port: the SYN goes unanswered
        allow(ec2, net["sg"]["ec2"], port, cidr="10.61.0.0/16")  # the VPC only: still closed to the internet
        assert http_status(url) == "timed out"
        allow(ec2, net["sg"]["ec2"], port, cidr="0.0.0.0/0")
        assert http_status(url, 10) == 200
        ec2.delete_route(RouteTableId=net["public_rt"], DestinationCidrBlock="0.0.0.0/0")  # no internet gateway route
        try:
            assert http_status(url) == "timed out"
        finally:
            ec2.create_route(RouteTableId=net["public_rt"], DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"])
        # A Lambda in the VPC has no way out to a public address (no public IP, no NAT).
        fn = probe_function(cloud, "net-to-app", net, subnets=("public",))
        assert ask(cloud, fn, tcp=[[public, port]]) == {f"{public}:{port}": "timed out"}
        allow(ec2, net["sg"]["ec2"], port, cidr="0.0.0.0/0", revoke=True)
    finally:
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])


def _listening_behind_a_black_hole(address: tuple[str, int], seconds: float = 60) -> bool:
    """Wait until the instance's server listens: before, nothing is at its public IP (refused); after, the SYN
    goes unanswered (its group lets nothing in from your computer)."""
    def met() -> str | None:
        try:
            socket.create_connection(address, timeout=0.5).close()
            return "answered"  # not dropped
        except ConnectionRefusedError:
            return None
        except TimeoutError:
            return "dropped"

    return until(met, seconds) == "dropped"


def test_an_instance_launched_without_groups_is_in_the_default_group(cloud, net):
    """RunInstances without groups puts the instance in its VPC's default group, which lets in only its own
    members: the app is not reachable from your computer until a rule for your address /32 lets it in; a rule
    for the instance's public IP /32 lets in what leaves the VPC from there (the instance itself), not you."""
    ec2, port = cloud.client("ec2"), free_port()
    profile = instance_profile(cloud.client("iam"), "net-default-group-profile")
    instance = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro", IamInstanceProfile={"Name": profile},
        UserData=f"#!/bin/sh\nnohup python3 -m http.server {port} >/dev/null 2>&1 &\n",
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": net["subnet"]["public"], "AssociatePublicIpAddress": True}]
    )["Instances"][0]
    default = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]},
                                                    {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    url, described = f"http://{instance['PublicIpAddress']}:{port}/", ec2.describe_instances(
        InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
    mine, other = "127.0.0.1/32", f"{instance['PublicIpAddress']}/32"
    try:
        expected = [{"GroupId": default["GroupId"], "GroupName": "default"}]
        assert instance["SecurityGroups"] == described["SecurityGroups"] == expected
        assert described["NetworkInterfaces"][0]["Groups"] == expected
        assert [(p["IpProtocol"], [g["GroupId"] for g in p["UserIdGroupPairs"]], p["IpRanges"])
                for p in default["IpPermissions"]] == [("-1", [default["GroupId"]], [])]  # from itself only
        assert [(p["IpProtocol"], p["IpRanges"]) for p in default["IpPermissionsEgress"]] == [
            ("-1", [{"CidrIp": "0.0.0.0/0"}])]
        assert _listening_behind_a_black_hole((instance["PublicIpAddress"], port))
        assert http_status(url) == "timed out"
        allow(ec2, default["GroupId"], port, cidr=mine)  # your address /32 (what checkip answers)
        assert http_status(url, 10) == 200
        allow(ec2, default["GroupId"], port, cidr=other)
        allow(ec2, default["GroupId"], port, cidr=mine, revoke=True)  # at once: the next request is dropped
        assert http_status(url) == "timed out"
        assert local_get(cloud, instance["InstanceId"], url, seconds=5) == "200"  # out through the IGW, in as other
        # ModifyInstanceAttribute Groups replaces the groups, on the instance and on its network interface.
        ec2.modify_instance_attribute(InstanceId=instance["InstanceId"], Groups=[net["sg"]["ec2"]])
        moved = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
        assert [g["GroupId"] for g in moved["SecurityGroups"]] == [net["sg"]["ec2"]]
        assert moved["NetworkInterfaces"][0]["Groups"] == moved["SecurityGroups"]
        # ... and ModifyNetworkInterfaceAttribute Groups on its primary interface are the instance's groups.
        ec2.modify_network_interface_attribute(NetworkInterfaceId=moved["NetworkInterfaces"][0]["NetworkInterfaceId"],
                                               Groups=[default["GroupId"]])
        back = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
        assert back["SecurityGroups"] == back["NetworkInterfaces"][0]["Groups"] == expected
    finally:
        for cidr in (mine, other):
            try:
                allow(ec2, default["GroupId"], port, cidr=cidr, revoke=True)
            except Exception:
                pass
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])


def test_private_dns_of_an_endpoint_turns_off_and_on_as_asked(cloud, net):
    """ModifyVpcEndpoint PrivateDnsEnabled: off, the private subnets' Secrets Manager calls go to the public endpoint
    (no route: they time out); on again, through the endpoint (notebook 15's fix)."""
    ec2, endpoint = cloud.client("ec2"), net["sm_endpoint"]
    fn = probe_function(cloud, "net-private-dns", net)
    try:
        ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, PrivateDnsEnabled=False)
        assert ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-endpoint-id", "Values": [endpoint]}])[
            "VpcEndpoints"][0]["PrivateDnsEnabled"] is False
        assert ask(cloud, fn, api=["secretsmanager"]) == {"secretsmanager": "ConnectTimeoutError"}
    finally:
        ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, PrivateDnsEnabled=True)
    assert ask(cloud, fn, api=["secretsmanager"]) == {"secretsmanager": "ok"}
    with pytest.raises(ClientError) as conflict:  # a second endpoint cannot hold the same private name
        ec2.create_vpc_endpoint(VpcId=net["vpc"], VpcEndpointType="Interface", PrivateDnsEnabled=True,
                                ServiceName="com.amazonaws.us-east-1.secretsmanager",
                                SubnetIds=[net["subnet"]["private-a"]])
    assert conflict.value.response["Error"]["Code"] == "InvalidParameter"
    assert conflict.value.response["Error"]["Message"] == (
        "private-dns-enabled cannot be set because there is already a conflicting DNS domain for "
        f"secretsmanager.us-east-1.amazonaws.com in the VPC {net['vpc']}")


def test_private_dns_needs_the_vpcs_dns_attributes(cloud):
    ec2 = cloud.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.63.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.63.1.0/24")["Subnet"]["SubnetId"]
    try:
        with pytest.raises(ClientError) as refused:
            ec2.create_vpc_endpoint(VpcId=vpc, VpcEndpointType="Interface", SubnetIds=[subnet],
                                    ServiceName="com.amazonaws.us-east-1.secretsmanager")  # private DNS by default
        assert refused.value.response["Error"]["Code"] == "InvalidParameter"
        assert refused.value.response["Error"]["Message"] == (
            "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes set to true "
            f"for {vpc}")
    finally:
        ec2.delete_subnet(SubnetId=subnet)
        ec2.delete_vpc(VpcId=vpc)


def test_an_interface_endpoint_created_without_groups_is_in_the_default_group(cloud, net):
    ec2 = cloud.client("ec2")
    default = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]},
                                                    {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    endpoint = ec2.create_vpc_endpoint(VpcId=net["vpc"], VpcEndpointType="Interface", PrivateDnsEnabled=False,
                                       ServiceName="com.amazonaws.us-east-1.kms", SubnetIds=[net["subnet"]["private-a"]]
                                       )["VpcEndpoint"]["VpcEndpointId"]
    try:
        described = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]
        assert described["Groups"] == [{"GroupId": default["GroupId"], "GroupName": "default"}]
    finally:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])


def test_the_hook_built_by_a_private_daemon_is_readable_by_every_account(tmp_path, monkeypatch):
    """The daemon runs with umask 077; on a shared install each student's processes must still preload the hook."""
    import os

    from labkit.localcloud.network import wiring as net_wiring

    monkeypatch.setenv("LABKIT_NETLINK", str(tmp_path / "labkit_netlink.so"))
    previous = os.umask(0o077)
    try:
        built = net_wiring.ensure_library()
    finally:
        os.umask(previous)
    assert built.stat().st_mode & 0o777 == 0o755
