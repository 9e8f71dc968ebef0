"""On the local cloud, which enforces IAM as AWS does: a refusal surfaces as AccessDenied, never as "absent"."""
from __future__ import annotations

import json

import boto3
import pytest

from labkit import AccessDenied, Lab, checks, functions, iam, network, schedule, secretsmanager
from labkit.steps import run_step

READER = "s10b-describe-only"


@pytest.fixture()
def reader(provisioned):
    """The lab, seen by an IAM user who may describe EC2 and nothing else."""
    lab, admin = provisioned.lab, provisioned.lab.client("iam")
    admin.create_user(UserName=READER)
    admin.put_user_policy(UserName=READER, PolicyName="describe-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}))
    key = admin.create_access_key(UserName=READER)["AccessKey"]
    seen = Lab(target="local", name=lab.name, cloud_port=lab.config.cloud_port, app_port=lab.config.app_port,
               home=lab.config.home)
    seen._session = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                                  region_name=lab.region)
    seen._clients = {}
    try:
        yield seen
    finally:
        admin.delete_access_key(UserName=READER, AccessKeyId=key["AccessKeyId"])
        admin.delete_user_policy(UserName=READER, PolicyName="describe-only")
        admin.delete_user(UserName=READER)


@pytest.mark.parametrize("read", [
    iam.roles_frame, functions.functions_frame, network.db_subnet_group_frame, secretsmanager.read_secret,
    lambda lab: schedule.events_permission(lab, f"arn:aws:events:{lab.region}:123456789012:rule/{lab.name}-daily-delta"),
], ids=["roles", "functions", "db-subnet-group", "secret", "events-permission"])
def test_a_refusal_is_an_error_not_an_absent_resource(reader, read):
    with pytest.raises(AccessDenied, match="not authorized") as caught:
        read(reader)
    assert "How to fix" in str(caught.value)


def test_a_check_that_may_not_look_raises_instead_of_failing(reader):
    with pytest.raises(AccessDenied, match="secretsmanager:GetSecretValue"):
        checks.step_checks(reader, 9)
    assert checks.step_checks(reader, 1)["passed"].all()  # what it may describe, it checks


def test_a_step_refused_names_the_permission(reader):
    with pytest.raises(Exception, match="not authorized") as caught:
        run_step(reader, 9)
    assert "How to fix" in str(caught.value)
