"""Defects of the aws target (issue 13) that the local cloud reproduces: each breaks the thing on purpose."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from labkit import iam, lookups, secretsmanager, teardown
from labkit.steps import run_step


def test_step_4_recovers_a_secret_scheduled_for_deletion(provisioned):
    lab = provisioned.lab
    sm = lab.client("secretsmanager")
    password = secretsmanager.read_secret(lab)["password"]
    sm.delete_secret(SecretId=iam.SECRET_NAME, RecoveryWindowInDays=7)
    try:
        with pytest.raises(ClientError) as caught:  # AWS's own symptom
            sm.get_secret_value(SecretId=iam.SECRET_NAME)
        assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
        assert secretsmanager.read_secret(lab) is None
        run_step(lab, 4)
        assert secretsmanager.read_secret(lab)["password"] == password  # recovered, not replaced
        assert not secretsmanager.pending_deletion(lab)
    finally:
        if secretsmanager.pending_deletion(lab):
            sm.restore_secret(SecretId=iam.SECRET_NAME)


def test_remaining_frame_lists_network_interfaces_left_in_the_vpc(provisioned):
    lab = provisioned.lab
    ec2 = lab.client("ec2")
    subnet = sorted(lookups.subnet_ids(lab, public=False))[0]
    eni = ec2.create_network_interface(SubnetId=subnet, Description="left behind")["NetworkInterface"]
    try:
        left = teardown.remaining_frame(lab)
        rows = left[left["id"].str.startswith(eni["NetworkInterfaceId"])]
        assert len(rows) == 1 and rows.iloc[0]["kind"].startswith("network interface")
    finally:
        ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])


def test_rds_catalogue_answers_as_aws(cloud):
    rds, ec2 = cloud.client("rds"), cloud.client("ec2")
    default = rds.describe_db_engine_versions(Engine="mysql", DBParameterGroupFamily="mysql8.4",
                                              DefaultOnly=True)["DBEngineVersions"]
    assert len(default) == 1 and default[0]["EngineVersion"].startswith("8.4.")
    options = rds.describe_orderable_db_instance_options(Engine="mysql", EngineVersion=default[0]["EngineVersion"],
                                                         DBInstanceClass="db.t3.micro")["OrderableDBInstanceOptions"]
    zones = {z["Name"] for o in options for z in o["AvailabilityZones"]}
    offered = {o["Location"] for o in ec2.describe_instance_type_offerings(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": ["t3.micro"]}])["InstanceTypeOfferings"]}
    assert zones == offered and "us-east-1e" not in zones  # as on AWS: no t3 capacity in us-east-1e


def test_the_lab_runs_the_pinned_engine_in_zones_that_offer_it(provisioned):
    from labkit import database, network

    lab = provisioned.lab
    db = database.describe_db_instance(lab)
    assert db["EngineVersion"] == database.engine_version(lab) and db["EngineVersion"].startswith("8.4.")
    zones = set(network.network_frame(lab).query("kind == 'subnet'")["detail"].str.split().str[1])
    assert zones == set(network.choose_zones(lab))


RSA_LOGIN = '''
import pymysql._auth as auth
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def lambda_handler(event, context):
    # what PyMySQL does for caching_sha2_password on a connection without TLS (MySQL 8.4 on RDS)
    return len(auth.sha2_rsa_encrypt(b"a-password", b"12345678901234567890", PEM))
'''


def test_the_layer_carries_what_caching_sha2_password_needs_without_tls(cloud):
    """MySQL 8.4's login over plain TCP encrypts the password with the server's RSA key: PyMySQL needs
    `cryptography` for it, and the Lambda runtime has only boto3, so the layer must carry it."""
    from labkit import functions
    from tests.helpers.lambdas import create_function

    lam = cloud.client("lambda")
    layer = lam.publish_layer_version(LayerName="pymysql-rsa", Content={"ZipFile": functions.build_layer()},
                                      CompatibleRuntimes=[functions.RUNTIME])["LayerVersionArn"]
    create_function(cloud, "rsa-login", RSA_LOGIN, Layers=[layer], Timeout=30)
    try:
        result = lam.invoke(FunctionName="rsa-login", Payload=b"{}")
        assert "FunctionError" not in result, result["Payload"].read()
        assert result["Payload"].read() == b"256"
        create_function(cloud, "rsa-login-bare", RSA_LOGIN, Timeout=30)  # the runtime alone: no cryptography
        bare = lam.invoke(FunctionName="rsa-login-bare", Payload=b"{}")
        assert bare.get("FunctionError") == "Unhandled" and b"ImportModuleError" in bare["Payload"].read()
    finally:
        for name in ("rsa-login", "rsa-login-bare"):
            lam.delete_function(FunctionName=name)


def test_orders_frame_pages_past_the_ssm_output_limit(provisioned):
    """SSM returns at most 24,000 characters of a command's output: a long result must be paged, not cut."""
    import uuid
    import warnings

    from labkit import database

    lab = provisioned.lab
    ids = [str(uuid.uuid4()) for _ in range(220)]
    conn = provisioned.db_connection()
    try:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO orders (order_id, customer_name, product, quantity, amount, created_at) "
                            "VALUES (%s, %s, %s, 1, 1.00, UTC_TIMESTAMP(6))",
                            [(i, "N" * 100, "P" * 100) for i in ids])  # ~260 characters a row: > 55,000 in all
        stored = int(database.query(lab, "SELECT COUNT(*) AS n FROM orders;")["n"].iloc[0])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a whole frame says nothing
            frame = database.orders_frame(lab, limit=1000)
        assert set(ids) <= set(frame["order_id"]) and len(frame) == stored
        assert frame.attrs == {"total": stored, "partial": False}
        with pytest.warns(UserWarning, match=f"newest 50 of {stored} orders"):
            newest = database.orders_frame(lab, limit=50)
        assert len(newest) == 50 and newest.attrs["partial"]
        with pytest.raises(Exception, match="24,000"):  # a single query that would be cut says so
            database.query(lab, "SELECT customer_name, product FROM orders;")
    finally:
        with conn.cursor() as cur:
            cur.executemany("DELETE FROM orders WHERE order_id = %s", [(i,) for i in ids])
        conn.close()
