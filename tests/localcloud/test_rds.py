"""RDS instances are real MySQL-compatible servers."""
from __future__ import annotations

import socket
import time

import pymysql
import pytest

PASSWORD = "Sup3r-Secret-pw"


def _network(ec2, rds, name: str) -> list[str]:
    """Public subnets (routed to an internet gateway) and a group open on 3306: the test reaches the DB directly."""
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


def _create(rds, ident: str, group: str, groups: list[str], engine: str = "mysql") -> dict:
    created = rds.create_db_instance(
        DBInstanceIdentifier=ident, Engine=engine, DBInstanceClass="db.t3.micro", MasterUsername="admin",
        MasterUserPassword=PASSWORD, DBName="ordersdb", AllocatedStorage=20, DBSubnetGroupName=group,
        PubliclyAccessible=True, VpcSecurityGroupIds=groups)["DBInstance"]
    assert created["DBInstanceStatus"] == "creating"
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=ident, WaiterConfig={"Delay": 1})
    return rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]


def _wait_status(rds, ident: str, wanted: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]["DBInstanceStatus"] != wanted:
        assert time.monotonic() < deadline, f"{ident} never became {wanted}"
        time.sleep(0.2)


def _connect(endpoint: dict, password: str = PASSWORD) -> pymysql.Connection:
    return pymysql.connect(host=endpoint["Address"], port=endpoint["Port"], user="admin", password=password,
                           database="ordersdb", autocommit=True)


def test_instance_is_a_real_server_that_keeps_rows_across_stop_start(own_cloud):
    ec2, rds = own_cloud.client("ec2"), own_cloud.client("rds")
    groups = _network(ec2, rds, "grp")
    db = _create(rds, "orders-db", "grp", groups)
    endpoint = db["Endpoint"]
    assert endpoint["Address"].startswith("127.") and db["DBInstanceStatus"] == "available"
    with _connect(endpoint) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20))")
        cur.execute("INSERT INTO t VALUES (1, 'kept')")
        cur.execute("SELECT name FROM t")
        assert cur.fetchall() == (("kept",),)

    rds.stop_db_instance(DBInstanceIdentifier="orders-db")
    _wait_status(rds, "orders-db", "stopped")
    with pytest.raises(pymysql.err.OperationalError):
        _connect(endpoint)
    rds.start_db_instance(DBInstanceIdentifier="orders-db")
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="orders-db", WaiterConfig={"Delay": 1})
    with _connect(endpoint) as conn, conn.cursor() as cur:
        cur.execute("SELECT name FROM t")
        assert cur.fetchall() == (("kept",),)

    datadir = own_cloud.home / "rds" / "orders-db"
    assert datadir.exists()
    rds.delete_db_instance(DBInstanceIdentifier="orders-db", SkipFinalSnapshot=True)
    assert not datadir.exists()
    with socket.socket() as sock:
        assert sock.connect_ex((endpoint["Address"], endpoint["Port"])) != 0


def test_wrong_password_and_root_are_refused(cloud):
    ec2, rds = cloud.client("ec2"), cloud.client("rds")
    groups = _network(ec2, rds, "grp-pw")
    endpoint = _create(rds, "pw-db", "grp-pw", groups, engine="mariadb")["Endpoint"]
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        _connect(endpoint, password="wrong")
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(host=endpoint["Address"], port=endpoint["Port"], user="root", password="")
    rds.delete_db_instance(DBInstanceIdentifier="pw-db", SkipFinalSnapshot=True)


def test_modifying_a_subnet_group_keeps_it(cloud):
    ec2, rds = cloud.client("ec2"), cloud.client("rds")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.8.{i}.0/24", AvailabilityZone="us-east-1" + "ab"[i % 2])
               ["Subnet"]["SubnetId"] for i in range(4)]
    rds.create_db_subnet_group(DBSubnetGroupName="Mixed-Case-SG", DBSubnetGroupDescription="d", SubnetIds=subnets[:2])
    rds.modify_db_subnet_group(DBSubnetGroupName="Mixed-Case-SG", SubnetIds=subnets[2:])
    group = rds.describe_db_subnet_groups(DBSubnetGroupName="Mixed-Case-SG")["DBSubnetGroups"][0]
    assert group["DBSubnetGroupName"] == "mixed-case-sg"
    assert sorted(s["SubnetIdentifier"] for s in group["Subnets"]) == sorted(subnets[2:])


def test_master_user_has_rds_privileges_and_the_socket_is_private(cloud):
    """As on RDS: the master user has no SUPER, FILE or SHUTDOWN; the server's socket is not in a shared /tmp."""
    import stat
    from pathlib import Path

    ec2, rds = cloud.client("ec2"), cloud.client("rds")
    groups = _network(ec2, rds, "grp-priv")
    endpoint = _create(rds, "priv-db", "grp-priv", groups)["Endpoint"]
    try:
        with _connect(endpoint) as conn, conn.cursor() as cur:
            cur.execute("SHOW GRANTS")
            grants = " ".join(row[0] for row in cur.fetchall()).upper()
            assert "ALL PRIVILEGES" not in grants
            for privilege in ("SUPER", "FILE", "SHUTDOWN"):
                assert f" {privilege}," not in grants and f" {privilege} ON" not in grants, grants
            assert "CREATE USER" in grants and "WITH GRANT OPTION" in grants
            with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
                cur.execute("SHUTDOWN")
            cur.execute("SELECT @@socket")
            socket_path = Path(cur.fetchone()[0])
        assert not str(socket_path).startswith("/tmp/labkit-")
        folder = socket_path.parent
        while folder != cloud.home and folder != folder.parent:
            if stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0:
                break
            folder = folder.parent
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, f"{socket_path} is reachable by other accounts"
    finally:
        rds.delete_db_instance(DBInstanceIdentifier="priv-db", SkipFinalSnapshot=True)
