"""RDS instances are real MySQL-compatible servers."""
from __future__ import annotations

import socket

import pymysql
import pytest

from tests.helpers.rds import connect_db, create_db, public_db_network, wait_db_status


def test_instance_is_a_real_server_that_keeps_rows_across_stop_start(own_cloud):
    ec2, rds = own_cloud.client("ec2"), own_cloud.client("rds")
    groups = public_db_network(ec2, rds, "grp")
    db = create_db(rds, "orders-db", "grp", groups)
    endpoint = db["Endpoint"]
    assert endpoint["Address"].startswith("127.") and db["DBInstanceStatus"] == "available"
    with connect_db(endpoint) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20))")
        cur.execute("INSERT INTO t VALUES (1, 'kept')")
        cur.execute("SELECT name FROM t")
        assert cur.fetchall() == (("kept",),)

    rds.stop_db_instance(DBInstanceIdentifier="orders-db")
    wait_db_status(rds, "orders-db", "stopped")
    with pytest.raises(pymysql.err.OperationalError):
        connect_db(endpoint)
    rds.start_db_instance(DBInstanceIdentifier="orders-db")
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="orders-db", WaiterConfig={"Delay": 1})
    with connect_db(endpoint) as conn, conn.cursor() as cur:
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
    groups = public_db_network(ec2, rds, "grp-pw")
    endpoint = create_db(rds, "pw-db", "grp-pw", groups, engine="mariadb")["Endpoint"]
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        connect_db(endpoint, password="wrong")
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
    groups = public_db_network(ec2, rds, "grp-priv")
    endpoint = create_db(rds, "priv-db", "grp-priv", groups)["Endpoint"]
    try:
        with connect_db(endpoint) as conn, conn.cursor() as cur:
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
