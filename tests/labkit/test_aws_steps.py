"""Steps that can fail on a real account (issue 25 items 4-7 and 9), on the aws path with botocore's Stubber:
answers shaped as AWS's, the transient ones included, every queued answer asked for."""
from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.stub import ANY, Stubber

from labkit import StepError, database, functions, network
from tests.labkit.stub_lab import FakeLab

DB_ID = "stub-lab-db"


def _db(status: str = "available", pending: dict | None = None, **fields) -> dict:
    db = {"DBInstanceIdentifier": DB_ID, "DBInstanceStatus": status, "Engine": "mysql", "MasterUsername": "admin",
          "BackupRetentionPeriod": 1, "PendingModifiedValues": pending or {}, **fields}
    return {"DBInstances": [db]}


def _rds() -> tuple[object, Stubber]:
    rds = boto3.client("rds", region_name="eu-west-1")
    return rds, Stubber(rds)


# -- item 4: a change is waited for until it shows ----------------------------------------------------------------
def test_a_password_reset_is_waited_for_until_it_is_done():
    rds, stub = _rds()
    stub.add_response("modify_db_instance", {"DBInstance": _db(pending={"MasterUserPassword": "****"})["DBInstances"][0]},
                      {"DBInstanceIdentifier": DB_ID, "ApplyImmediately": True, "MasterUserPassword": "n3w-Passw0rd"})
    stub.add_response("describe_db_instances", _db(pending={"MasterUserPassword": "****"}))  # the old waiter: done
    stub.add_response("describe_db_instances", _db("resetting-master-credentials"))
    stub.add_response("describe_db_instances", _db("available"))
    with stub:
        db = database.apply_db_changes(FakeLab(rds=rds), MasterUserPassword="n3w-Passw0rd")
        stub.assert_no_pending_responses()
    assert db["DBInstanceStatus"] == "available"


def test_a_change_rds_has_not_taken_yet_is_waited_for():
    """ModifyDBInstance answered before RDS took the change: `available`, nothing pending, the old value."""
    rds, stub = _rds()
    stub.add_response("modify_db_instance", {"DBInstance": _db()["DBInstances"][0]})
    stub.add_response("describe_db_instances", _db())  # not taken yet: the db_instance_available waiter stopped here
    stub.add_response("describe_db_instances", _db("modifying", pending={"BackupRetentionPeriod": 7}))
    stub.add_response("describe_db_instances", _db("available", BackupRetentionPeriod=1))  # still the old value
    stub.add_response("describe_db_instances", _db("available", BackupRetentionPeriod=7))
    with stub:
        db = database.apply_db_changes(FakeLab(rds=rds), BackupRetentionPeriod=7)
        stub.assert_no_pending_responses()
    assert db["BackupRetentionPeriod"] == 7


def test_a_change_never_seen_under_way_counts_after_a_few_polls():
    """A password reset done between two polls (the local cloud applies it at once): a few polls, then done."""
    rds, stub = _rds()
    stub.add_response("modify_db_instance", {"DBInstance": _db()["DBInstances"][0]})
    for _ in range(3):
        stub.add_response("describe_db_instances", _db())
    lab = FakeLab(rds=rds)
    lab.target.poll_seconds = 0.05
    with stub:
        database.apply_db_changes(lab, seconds=0.1, MasterUserPassword="n3w-Passw0rd")


def test_changes_that_do_not_show_in_time_are_explained():
    rds, stub = _rds()
    stub.add_response("modify_db_instance", {"DBInstance": _db()["DBInstances"][0]})
    for _ in range(50):
        stub.add_response("describe_db_instances", _db("modifying", pending={"BackupRetentionPeriod": 7}))
    with stub, pytest.raises(StepError, match=r"did not show .*status modifying, pending \['BackupRetentionPeriod'\]"):
        database.apply_db_changes(FakeLab(rds=rds), seconds=0.05, BackupRetentionPeriod=7)


# -- item 7: creating the instance may take longer than 20 minutes, and a wait resumes ----------------------------
def test_the_create_wait_lasts_an_hour():
    rds, stub = _rds()
    lab = FakeLab(rds=rds)
    lab.target.poll_seconds = 15  # the aws target's
    waits = []
    with stub:
        rds.get_waiter = lambda name: type("W", (), {"wait": lambda self, **kw: waits.append(kw)})()
        database.wait_until_available(lab)
    delay, attempts = waits[0]["WaiterConfig"]["Delay"], waits[0]["WaiterConfig"]["MaxAttempts"]
    assert delay * attempts >= 3600  # it was 20 minutes, what AWS itself often takes


def test_a_wait_that_ends_first_says_so_and_a_second_run_resumes():
    rds, stub = _rds()
    lab = FakeLab(rds=rds)
    lab.target.poll_seconds = 0.5  # the waiter's delay is then 1 s
    for status in ("creating", "creating"):
        stub.add_response("describe_db_instances", _db(status), {"DBInstanceIdentifier": DB_ID})
    with stub, pytest.raises(StepError, match="still creating after 0 minutes; RDS goes on with it") as caught:
        database.wait_until_available(lab, seconds=2)
    assert "run this step again: it goes on waiting" in str(caught.value)
    stub.add_response("describe_db_instances", _db("backing-up"), {"DBInstanceIdentifier": DB_ID})
    stub.add_response("describe_db_instances", _db("available"), {"DBInstanceIdentifier": DB_ID})
    with stub:
        database.wait_until_available(lab, seconds=10)
        stub.assert_no_pending_responses()


def test_a_failed_instance_is_explained_at_once():
    rds, stub = _rds()
    stub.add_response("describe_db_instances", _db("failed"))
    with stub, pytest.raises(StepError, match="is failed, and RDS does not make it available by itself"):
        database.wait_until_available(FakeLab(rds=rds))


# -- item 5: EC2's eventual consistency right after a create -------------------------------------------------------
VPC_ID = "vpc-0a1b2c3d4e5f60718"


def _ec2() -> tuple[object, Stubber]:
    ec2 = boto3.client("ec2", region_name="eu-west-1")
    return ec2, Stubber(ec2)


def test_a_new_vpc_is_waited_for_where_ec2_does_not_know_it_yet():
    ec2, stub = _ec2()
    stub.add_response("describe_vpcs", {"Vpcs": []})  # the lab's VPC is looked for by tag first
    stub.add_response("create_vpc", {"Vpc": {"VpcId": VPC_ID, "State": "pending", "CidrBlock": "10.0.0.0/16"}})
    not_yet = ("InvalidVpcID.NotFound", f"The vpc ID '{VPC_ID}' does not exist")
    stub.add_client_error("describe_vpcs", *not_yet, expected_params={"VpcIds": [VPC_ID]})  # the waiter's poll
    stub.add_response("describe_vpcs", {"Vpcs": [{"VpcId": VPC_ID, "State": "available"}]}, {"VpcIds": [VPC_ID]})
    stub.add_client_error("modify_vpc_attribute", *not_yet)
    stub.add_response("modify_vpc_attribute", {}, {"VpcId": VPC_ID, "EnableDnsSupport": {"Value": True}})
    stub.add_response("modify_vpc_attribute", {}, {"VpcId": VPC_ID, "EnableDnsHostnames": {"Value": True}})
    with stub:
        assert network.ensure_vpc(FakeLab(ec2=ec2))["VpcId"] == VPC_ID
        stub.assert_no_pending_responses()


RULE = {"GroupId": "sg-0123456789abcdef0", "IpPermissions": [
    {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306,
     "UserIdGroupPairs": [{"GroupId": "sg-0fedcba9876543210", "Description": "MySQL from the Lambdas"}]}]}


def test_a_rule_naming_a_group_just_made_is_tried_again():
    ec2, stub = _ec2()
    for _ in range(2):
        stub.add_client_error("authorize_security_group_ingress", "InvalidGroup.NotFound",
                              "The security group 'sg-0fedcba9876543210' does not exist", expected_params=RULE)
    stub.add_response("authorize_security_group_ingress", {"Return": True}, RULE)
    with stub:
        network.allow_from_group(FakeLab(ec2=ec2), "sg-0123456789abcdef0", 3306, "sg-0fedcba9876543210",
                                 "MySQL from the Lambdas")
        stub.assert_no_pending_responses()


def test_other_ec2_errors_are_not_retried():
    ec2, stub = _ec2()
    stub.add_client_error("authorize_security_group_ingress", "InvalidParameterValue", "Invalid IPv4 CIDR")
    with stub, pytest.raises(Exception, match="InvalidParameterValue"):
        network.allow_from_group(FakeLab(ec2=ec2), "sg-0123456789abcdef0", 3306, "sg-0fedcba9876543210", "x")


def test_a_resource_that_never_appears_ends_the_wait(monkeypatch):
    monkeypatch.setattr(network, "EVENTUAL_SECONDS", 0.05)
    ec2, stub = _ec2()
    igw = {"InternetGatewayId": "igw-0123456789abcdef0", "Attachments": []}
    stub.add_response("describe_internet_gateways", {"InternetGateways": [igw]})  # found by tag, not attached
    for _ in range(100):
        stub.add_client_error("attach_internet_gateway", "InvalidInternetGatewayID.NotFound", "does not exist")
    with stub, pytest.raises(Exception, match="InvalidInternetGatewayID.NotFound"):
        network.ensure_internet_gateway(FakeLab(ec2=ec2), VPC_ID)


# -- item 6: the report bucket's name is valid and the lab's own -------------------------------------------------
def test_a_long_lab_name_creates_a_valid_bucket():
    import re

    from labkit import Lab, storage

    lab = Lab(target="aws", name="class-2026-section-a-group-0001", region="ap-southeast-2", confirm=True)
    sts, s3 = lab.client("sts"), lab.client("s3")
    with Stubber(sts) as sts_stub, Stubber(s3) as stub:
        sts_stub.add_response("get_caller_identity", {"Account": "123456789012", "UserId": "AIDAEXAMPLE",
                                                      "Arn": "arn:aws:iam::123456789012:user/student"})
        name = "class-2026-section-ce933609-reports-123456789012-ap-southeast-2"  # the lab name cut, its hash
        stub.add_client_error("head_bucket", "404", "Not Found", 404, expected_params={"Bucket": name})
        stub.add_response("create_bucket", {"Location": f"http://{name}.s3.amazonaws.com/"},
                          {"Bucket": name, "CreateBucketConfiguration": {"LocationConstraint": "ap-southeast-2"}})
        stub.add_response("head_bucket", {"ResponseMetadata": {"HTTPStatusCode": 200}}, {"Bucket": name})  # the waiter
        for operation in ("put_public_access_block", "put_bucket_encryption", "put_bucket_tagging"):
            stub.add_response(operation, {}, {"Bucket": name, **dict.fromkeys({"put_public_access_block": ["PublicAccessBlockConfiguration"], "put_bucket_encryption": ["ServerSideEncryptionConfiguration"], "put_bucket_tagging": ["Tagging"]}[operation], ANY)})
        assert storage.create_bucket(lab) == name
        stub.assert_no_pending_responses()
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9][a-z0-9-]+[a-z0-9]", name)


# -- item 9: CreateFunction is tried again only while IAM catches up -----------------------------------------------
CONFIG = {"Role": "arn:aws:iam::123456789012:role/order-app-lambda-role", "Handler": "lambda_function.lambda_handler",
          "Runtime": "python3.13", "Timeout": 30, "MemorySize": 256}
CREATED = {"FunctionName": "order-validator", "State": "Pending",
           "FunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:order-validator"}


def _create(stub_answers: list[str | None]) -> Stubber:
    lam = boto3.client("lambda", region_name="eu-west-1")
    stub = Stubber(lam)
    for message in stub_answers:
        if message is None:
            stub.add_response("create_function", CREATED)
        else:
            stub.add_client_error("create_function", "InvalidParameterValueException", message, 400)
    with stub:
        try:
            functions._create_with_role_retry(lam, "order-validator", b"zip", CONFIG, FakeLab(), seconds=5)
        finally:
            stub.assert_no_pending_responses()
    return stub


def test_create_function_waits_for_a_new_role_and_its_vpc_permissions():
    _create(["The role defined for the function cannot be assumed by Lambda.",
             "The provided execution role does not have permissions to call CreateNetworkInterface on EC2",
             None])


@pytest.mark.parametrize("message", [
    "Unzipped size must be smaller than 262144000 bytes",
    "The runtime parameter of python3.10 is no longer supported for creating or updating AWS Lambda functions.",
    "Layer version arn:aws:lambda:eu-west-1:123456789012:layer:stub-lab-pymysql:3 does not exist.",
    "Security group sg-0123456789abcdef0 is invalid or does not exist in the same VPC as the subnets",
])
def test_other_invalid_parameters_are_raised_at_once(message):
    with pytest.raises(Exception, match="InvalidParameterValueException") as caught:
        _create([message])  # one answer queued: a second CreateFunction would find none
    assert message in str(caught.value)


# -- item 8: on AWS the functions and the layer use a runtime AWS supports, whatever this machine has ----------
def test_on_aws_the_layer_and_the_function_use_the_aws_runtime(monkeypatch):
    from labkit import Lab, lambda_platform

    monkeypatch.setattr(lambda_platform, "runtime", lambda venv=None: "python3.10")  # a machine with only 3.10
    lab = Lab(target="aws", name="stub-lab", region="eu-west-1", confirm=True)
    monkeypatch.setattr(lab.target, "db_ca_bundle", lambda: b"-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr(functions, "build_layer", lambda runtime=None: f"layer for {runtime}".encode())
    lam = lab.client("lambda")
    layer_arn = "arn:aws:lambda:eu-west-1:123456789012:layer:stub-lab-pymysql:1"
    with Stubber(lam) as stub:
        stub.add_response("list_layer_versions", {"LayerVersions": []}, {"LayerName": "stub-lab-pymysql"})
        stub.add_response("publish_layer_version", {"LayerVersionArn": layer_arn, "Version": 1},
                          {"LayerName": "stub-lab-pymysql", "Content": {"ZipFile": b"layer for python3.13"},
                           "CompatibleRuntimes": ["python3.13"], "CompatibleArchitectures": ["x86_64"],
                           "Description": ANY, "LicenseInfo": "MIT"})
        assert functions.ensure_layer(lab) == layer_arn
        stub.add_client_error("get_function", "ResourceNotFoundException", "Function not found", 404)  # not yet
        stub.add_response("create_function", CREATED, {
            "FunctionName": "order-validator", "Code": {"ZipFile": ANY}, "Architectures": ["x86_64"],
            "Tags": {"lab": "stub-lab"}, "Role": CONFIG["Role"], "Handler": CONFIG["Handler"],
            "Runtime": "python3.13", "Timeout": 30, "MemorySize": 256, "Layers": [layer_arn],
            "Environment": {"Variables": {"DB_SECRET_NAME": "order-db-secret"}}})
        active = {"Configuration": {**CREATED, "State": "Active", "Runtime": "python3.13"}}
        stub.add_response("get_function", active)  # the function_active_v2 waiter
        stub.add_response("get_function", active)
        config = functions.ensure_function(lab, "order-validator", "order_validator", CONFIG["Role"],
                                           {"DB_SECRET_NAME": "order-db-secret"}, timeout=30, memory=256,
                                           layers=[layer_arn], vpc=None)
        stub.assert_no_pending_responses()
    assert config["Runtime"] == "python3.13"


# -- item 2: the secret-format probe on aws: its own role, a broken secret without the real password ----------
def test_the_broken_secret_reads_nothing_of_the_labs_secret():
    from labkit import troubleshoot

    sm = boto3.client("secretsmanager", region_name="eu-west-1")
    with Stubber(sm) as stub:  # no GetSecretValue queued: the lab's secret is never read
        stub.add_response("put_secret_value", {"Name": "stub-lab-probe-secret",
                                                "VersionId": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"},
                          {"SecretId": "stub-lab-probe-secret", "SecretString": ANY})
        assert troubleshoot.write_broken_secret(FakeLab(secretsmanager=sm)) == "stub-lab-probe-secret"
        stub.assert_no_pending_responses()


def test_the_secret_probe_role_may_read_the_probe_secret_and_the_labs_only():
    import json

    from labkit import troubleshoot_iam

    client = boto3.client("iam", region_name="eu-west-1")
    lab = FakeLab(iam=client)
    lab.account_id = "123456789012"
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
        "Resource": [f"{arn}stub-lab-probe-secret-*", f"{arn}order-db-secret-*"]}]}
    role = {"RoleName": "stub-lab-probe-secret-role", "RoleId": "AROAEXAMPLEEXAMPLE01", "Path": "/",
            "Arn": "arn:aws:iam::123456789012:role/stub-lab-probe-secret-role",
            "CreateDate": dt.datetime(2026, 12, 4, tzinfo=dt.timezone.utc)}
    with Stubber(client) as stub:
        stub.add_client_error("get_role", "NoSuchEntity", "The role with name stub-lab-probe-secret-role cannot be "
                                                          "found.", 404)
        stub.add_response("create_role", {"Role": role}, {"RoleName": role["RoleName"], "Tags": FakeLab.tags,
                                                          "AssumeRolePolicyDocument": ANY, "Description": ANY})
        stub.add_response("get_role", {"Role": role, "ResponseMetadata": {"HTTPStatusCode": 200}},
                          {"RoleName": role["RoleName"]})  # the role_exists waiter
        stub.add_response("list_attached_role_policies", {"AttachedPolicies": []})
        for policy_arn in sorted(troubleshoot_iam.CASES["secret"]):
            stub.add_response("attach_role_policy", {}, {"RoleName": role["RoleName"],
                                                         "PolicyArn": troubleshoot_iam.AWS_POLICY + policy_arn})
        stub.add_response("list_role_policies", {"PolicyNames": []})
        stub.add_response("put_role_policy", {}, {"RoleName": role["RoleName"],
                                                  "PolicyName": troubleshoot_iam.PROBE_SECRET_POLICY,
                                                  "PolicyDocument": json.dumps(policy)})
        assert troubleshoot_iam.secret_probe_role(lab) == role["Arn"]
        stub.assert_no_pending_responses()
