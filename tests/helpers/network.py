"""The network for tests: a VPC like the lab's, security group rules, and a Lambda that probes what it reaches."""
from __future__ import annotations

import json
from typing import Any

from tests.helpers.lambdas import LAMBDA_TRUST, create_function

VPC_ACCESS = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
# What the probes call, so that only the network can stop them.
CALLS = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "secretsmanager:ListSecrets", "s3:ListAllMyBuckets", "lambda:ListFunctions"]}]})
# A function that tries what it is asked: TCP connections and AWS API calls, each with a short connect timeout.
PROBE = '''
import json, os, socket
import boto3
from botocore.config import Config

CONFIG = Config(connect_timeout=1.5, read_timeout=5, retries={"max_attempts": 1})


def tcp(host, port):
    try:
        socket.create_connection((host, port), timeout=1.5).close()
        return "connected"
    except socket.timeout:
        return "timed out"
    except OSError as exc:
        return type(exc).__name__


def api(service):
    client = boto3.client(service, config=CONFIG)
    calls = {"secretsmanager": lambda: client.list_secrets(), "s3": lambda: client.list_buckets(),
             "sts": lambda: client.get_caller_identity(), "lambda": lambda: client.list_functions()}
    try:
        calls[service]()
        return "ok"
    except Exception as exc:
        return type(exc).__name__


def lambda_handler(event, context):
    if event.get("hang"):
        boto3.client("secretsmanager").list_secrets()
    out = {}
    for host, port in event.get("tcp", []):
        out[f"{host}:{port}"] = tcp(host, port)
    for service in event.get("api", []):
        out[service] = api(service)
    return out
'''


def lab_vpc(ec2: Any, cidr_prefix: str) -> dict:
    """A VPC like the lab's: public subnets (IGW route), two private subnets, groups, a Secrets Manager endpoint.

    Returns its ids: ``vpc``, ``subnet`` (public, public-b, private-a, private-b), ``sg`` (ec2, lambda, rds,
    endpoints), ``igw``, ``public_rt``, ``private_rt``, ``sm_endpoint``."""
    vpc = ec2.create_vpc(CidrBlock=f"{cidr_prefix}.0.0/16")["Vpc"]["VpcId"]
    for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):  # private DNS for the endpoint needs both, on AWS
        ec2.modify_vpc_attribute(VpcId=vpc, **{attribute: {"Value": True}})
    subnet = {name: ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr_prefix}.{i}.0/24",
                                      AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
              for name, i, az in (("public", 1, "a"), ("public-b", 2, "b"), ("private-a", 11, "a"),
                                  ("private-b", 12, "b"))}
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    for name in ("public", "public-b"):
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=subnet[name])
    private_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    for name in ("private-a", "private-b"):
        ec2.associate_route_table(RouteTableId=private_rt, SubnetId=subnet[name])
    sg = {name: ec2.create_security_group(GroupName=f"{name}-{cidr_prefix}", Description=name, VpcId=vpc)["GroupId"]
          for name in ("ec2", "lambda", "rds", "endpoints")}
    allow(ec2, sg["rds"], 3306, group=sg["lambda"])
    allow(ec2, sg["endpoints"], 443, group=sg["lambda"])
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc, VpcEndpointType="Interface", ServiceName="com.amazonaws.us-east-1.secretsmanager",
        SubnetIds=[subnet["private-a"], subnet["private-b"]], SecurityGroupIds=[sg["endpoints"]],
        PrivateDnsEnabled=True)["VpcEndpoint"]["VpcEndpointId"]
    return {"vpc": vpc, "subnet": subnet, "sg": sg, "igw": igw, "public_rt": public_rt, "private_rt": private_rt,
            "sm_endpoint": endpoint}


def allow(ec2: Any, group_id: str, port: int, group: str | None = None, cidr: str | None = None,
          revoke: bool = False) -> None:
    """Authorize (or revoke) TCP ``port`` into ``group_id`` from another group or from a CIDR."""
    perm: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    if group:
        perm["UserIdGroupPairs"] = [{"GroupId": group}]
    else:
        perm["IpRanges"] = [{"CidrIp": cidr}]
    call = ec2.revoke_security_group_ingress if revoke else ec2.authorize_security_group_ingress
    call(GroupId=group_id, IpPermissions=[perm])


def probe_role(iam: Any) -> str:
    """The probes' role: VPC access, and the calls they try (CALLS)."""
    try:
        return iam.get_role(RoleName="net-probe-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName="net-probe-role", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        iam.attach_role_policy(RoleName="net-probe-role", PolicyArn=VPC_ACCESS)
        iam.put_role_policy(RoleName="net-probe-role", PolicyName="calls", PolicyDocument=CALLS)
        return arn


def probe_function(cloud: Any, name: str, net: dict | None, subnets: tuple[str, ...] = ("private-a", "private-b"),
                   timeout: int = 20) -> str:
    """A PROBE function, in ``net``'s ``subnets`` with its lambda group (outside any VPC when ``net`` is None)."""
    vpc = {"VpcConfig": {"SubnetIds": [net["subnet"][s] for s in subnets], "SecurityGroupIds": [net["sg"]["lambda"]]}
           } if net else {}
    create_function(cloud, name, PROBE, role=probe_role(cloud.client("iam")), Timeout=timeout, **vpc)
    return name


def ask(cloud: Any, name: str, **event: Any) -> dict:
    """Invoke a probe with ``event`` (``tcp=[[host, port]]``, ``api=[service]``): what it met, by target."""
    result = cloud.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    payload = json.loads(result["Payload"].read())
    assert "FunctionError" not in result, payload
    return payload


NET_DB_PASSWORD = "Net-w0rk-pw"


def lab_db(cloud: Any, net: dict, ident: str, public: bool = False) -> dict:
    """A MariaDB instance in the VPC of lab_vpc (private subnets, or public ones), behind its rds group; its endpoint."""
    rds = cloud.client("rds")
    subnets = [net["subnet"]["public"], net["subnet"]["public-b"]] if public else [
        net["subnet"]["private-a"], net["subnet"]["private-b"]]
    rds.create_db_subnet_group(DBSubnetGroupName=f"{ident}-grp", DBSubnetGroupDescription="d", SubnetIds=subnets)
    rds.create_db_instance(DBInstanceIdentifier=ident, Engine="mariadb", DBInstanceClass="db.t3.micro",
                           MasterUsername="admin", MasterUserPassword=NET_DB_PASSWORD, DBName="ordersdb",
                           AllocatedStorage=20, DBSubnetGroupName=f"{ident}-grp", PubliclyAccessible=public,
                           VpcSecurityGroupIds=[net["sg"]["rds"]])
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=ident, WaiterConfig={"Delay": 1})
    return rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]["Endpoint"]
