"""RDS for tests: a database your computer reaches (public subnets, a group open on 3306), its statuses."""
from __future__ import annotations

from typing import Any

import pymysql

from tests.helpers import until

PASSWORD = "Sup3r-Secret-pw"


def public_db_network(ec2: Any, rds: Any, name: str) -> list[str]:
    """Public subnets (routed to an internet gateway) in a DB subnet group ``name``, and a group open on 3306:
    the test reaches the DB directly. Returns the group's id, as VpcSecurityGroupIds."""
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"us-east-1{az}")
               ["Subnet"]["SubnetId"] for i, az in ((1, "a"), (2, "b"))]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    group = ec2.create_security_group(GroupName=f"{name}-db", Description="MySQL", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    rds.create_db_subnet_group(DBSubnetGroupName=name, DBSubnetGroupDescription="public", SubnetIds=subnets)
    return [group]


def create_db(rds: Any, ident: str, group: str, groups: list[str], engine: str = "mysql") -> dict:
    """A publicly accessible DB instance in subnet group ``group``, once available: its description."""
    created = rds.create_db_instance(
        DBInstanceIdentifier=ident, Engine=engine, DBInstanceClass="db.t3.micro", MasterUsername="admin",
        MasterUserPassword=PASSWORD, DBName="ordersdb", AllocatedStorage=20, DBSubnetGroupName=group,
        PubliclyAccessible=True, VpcSecurityGroupIds=groups)["DBInstance"]
    assert created["DBInstanceStatus"] == "creating"
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=ident, WaiterConfig={"Delay": 1})
    return rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]


def db_status(rds: Any, ident: str) -> str:
    return rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]["DBInstanceStatus"]


def wait_db_status(rds: Any, ident: str, wanted: str, seconds: float = 30) -> None:
    """Wait until the instance's status is ``wanted`` (botocore has waiters for available and deleted only)."""
    until(lambda: db_status(rds, ident) == wanted, seconds, 0.2,
          message=lambda: f"{ident} becoming {wanted} (it is {db_status(rds, ident)})")


def connect_db(endpoint: dict, password: str = PASSWORD) -> pymysql.Connection:
    """A connection to ``ordersdb`` as the master user (autocommit)."""
    return pymysql.connect(host=endpoint["Address"], port=endpoint["Port"], user="admin", password=password,
                           database="ordersdb", autocommit=True)
