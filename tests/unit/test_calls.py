"""labkit's record of its own AWS calls: botocore's event hooks, redaction, the AWS CLI equivalents.

On the aws target with botocore's Stubber (no network); the local target records through the same hooks
(tests/labkit/test_trail.py shows a step's calls there).
"""
from __future__ import annotations

import base64

import pytest
from botocore.stub import Stubber

from labkit import calls
from labkit.cli_render import cli_command
from labkit.names import STEP_NOTEBOOKS, console_path
from labkit.redact import HIDDEN, Blob, Hidden, redact
from labkit.session import Lab

PASSWORD = "Sup3r-Secret-Passw0rd"


@pytest.fixture()
def lab():
    return Lab(target="aws", name="calls-lab", region="eu-west-1", confirm=True)


def test_a_cell_shows_its_calls_with_status_error_and_cli(lab):
    sm = lab.client("secretsmanager")
    with Stubber(sm) as stub:
        calls.next_cell()
        stub.add_response("create_secret", {"ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:s", "Name": "s"})
        stub.add_client_error("get_secret_value", "AccessDeniedException", "no", http_status_code=400)
        sm.create_secret(Name="order-db-secret", SecretString=f'{{"password": "{PASSWORD}"}}')
        with pytest.raises(sm.exceptions.ClientError):
            sm.get_secret_value(SecretId="order-db-secret")
        calls.next_cell()  # the next cell asks for the calls of the cell before
    frame = calls.calls_frame(lab)
    assert list(frame["operation"]) == ["CreateSecret", "GetSecretValue"]
    assert list(frame["answer"]) == ["200", "AccessDeniedException"]
    assert frame.loc[0, "aws_cli"] == ("aws secretsmanager create-secret --name order-db-secret "
                                       "--secret-string file://secret.json")
    assert frame.loc[1, "aws_cli"] == "aws secretsmanager get-secret-value --secret-id order-db-secret"
    assert PASSWORD not in frame.to_string() and PASSWORD not in calls.cli_script(lab)
    assert HIDDEN in frame.loc[0, "parameters"]


def test_a_waiter_polling_is_one_row_with_its_count(lab):
    rds = lab.client("rds")
    with Stubber(rds) as stub:
        calls.next_cell()
        for status in ("creating", "creating", "available"):
            stub.add_response("describe_db_instances", {"DBInstances": [{"DBInstanceStatus": status}]})
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="orders-lab-db",
                                                     WaiterConfig={"Delay": 0})
        calls.next_cell()
    frame = calls.calls_frame(lab)
    assert frame[["operation", "count"]].values.tolist() == [["DescribeDBInstances", 3]]
    assert len(calls.calls_frame(lab, repeats=True)) == 3
    assert calls.cli_script(lab) == "aws rds describe-db-instances --db-instance-identifier orders-lab-db"


def test_an_unconfirmed_write_on_aws_is_refused_before_it_is_sent_and_not_recorded():
    lab = Lab(target="aws", name="calls-lab", region="eu-west-1")
    calls.next_cell()
    with pytest.raises(Exception, match="needs confirmation"):
        lab.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")
    assert calls.calls_frame(lab).empty


def test_redaction_hides_secrets_and_keeps_sizes():
    params = {"MasterUserPassword": PASSWORD, "UserData": base64.b64encode(b"#!/bin/sh\necho hi").decode(),
              "Code": {"ZipFile": b"PK\x03\x04" + bytes(100)},
              "Environment": {"Variables": {"DB_SECRET_NAME": "order-db-secret", "API_TOKEN": PASSWORD}},
              "SecretId": "order-db-secret"}
    shown = redact(params)
    assert shown["MasterUserPassword"] == Hidden("MasterUserPassword", len(PASSWORD))
    assert isinstance(shown["UserData"], Hidden)
    assert shown["Code"]["ZipFile"] == Blob(104, "ZipFile")
    assert shown["Environment"]["Variables"] == {"DB_SECRET_NAME": "order-db-secret",
                                                 "API_TOKEN": Hidden("API_TOKEN", len(PASSWORD))}
    assert shown["SecretId"] == "order-db-secret"
    assert PASSWORD not in repr(shown) and PASSWORD not in str(calls.short_parameters(shown))


@pytest.mark.parametrize("service, operation, params, expected", [
    ("rds", "CreateDBSubnetGroup",
     {"DBSubnetGroupName": "order-processing-app-SG", "DBSubnetGroupDescription": "private subnets",
      "SubnetIds": ["subnet-1", "subnet-2"]},
     "aws rds create-db-subnet-group --db-subnet-group-name order-processing-app-SG "
     "--db-subnet-group-description 'private subnets' --subnet-ids subnet-1 subnet-2"),
    ("rds", "CreateDBInstance", {"DBInstanceIdentifier": "db", "PubliclyAccessible": False, "AllocatedStorage": 20},
     "aws rds create-db-instance --db-instance-identifier db --no-publicly-accessible --allocated-storage 20"),
    ("ec2", "RunInstances", {"ImageId": "ami-1", "MinCount": 1, "MaxCount": 1, "UserData": Hidden("UserData", 9),
                             "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "lab", "Value": "x"}]}]},
     "aws ec2 run-instances --count 1 --image-id ami-1 --user-data file://user-data.sh --tag-specifications "
     "'[{\"ResourceType\":\"instance\",\"Tags\":[{\"Key\":\"lab\",\"Value\":\"x\"}]}]'"),
    ("lambda", "CreateFunction", {"FunctionName": "order-validator", "Code": {"ZipFile": Blob(10)}},
     "aws lambda create-function --zip-file fileb://code.zip --function-name order-validator"),
    ("lambda", "Invoke", {"FunctionName": "f", "Payload": '{"amount": 0}'},
     "aws lambda invoke --function-name f --payload '{\"amount\": 0}' --cli-binary-format raw-in-base64-out "
     "response.json"),
    ("s3", "PutBucketEncryption", {"Bucket": "b"}, "aws s3api put-bucket-encryption --bucket b"),
])
def test_cli_commands(service, operation, params, expected):
    assert cli_command(service, operation, params) == expected


def test_every_step_has_a_console_path():
    for step in STEP_NOTEBOOKS:
        assert console_path(step, "eu-west-1").endswith(")") and "https://console.aws.amazon.com/" in console_path(
            step, "eu-west-1")
    assert "region=eu-west-1" in console_path(4, "eu-west-1")


def test_step_calls_renders_console_table_and_cli(lab):
    ec2 = lab.client("ec2")
    with Stubber(ec2) as stub:
        calls.next_cell()
        stub.add_response("create_vpc", {"Vpc": {"VpcId": "vpc-1"}})
        ec2.create_vpc(CidrBlock="10.0.0.0/16")
        calls.next_cell()
    shown = calls.step_calls(lab, 1)._repr_html_()
    assert "VPC &gt; Your VPCs" in shown and "aws ec2 create-vpc --cidr-block 10.0.0.0/16" in shown
    assert ">operation</th>" in shown and "row_heading" not in shown  # labkit.display: no index column


def test_the_api_history_on_aws_reads_cloudtrail_lookup_events(lab):
    import datetime as dt
    import json

    from labkit import history

    record = {"userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/r/order-validator"},
              "errorCode": "AccessDenied", "errorMessage": "no", "sourceIPAddress": "10.0.3.7"}
    trail = lab.client("cloudtrail")
    with Stubber(trail) as stub:
        stub.add_response("lookup_events", {"Events": [{
            "EventId": "e", "EventName": "GetSecretValue", "EventTime": dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc),
            "EventSource": "secretsmanager.amazonaws.com", "CloudTrailEvent": json.dumps(record),
            "Resources": [{"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": "order-db-secret"}]}]},
            {"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "order-validator"}],
             "MaxResults": 50})
        frame = history.api_history_frame(lab, Username="order-validator")
    assert frame.iloc[0].to_dict() == {
        "time": "2026-01-01 12:00:00", "who": "assumed-role/r/order-validator", "event": "GetSecretValue",
        "service": "secretsmanager", "resource": "order-db-secret", "result": "AccessDenied", "message": "no",
        "source_ip": "10.0.3.7"}
    with pytest.raises(ValueError, match="one attribute"):
        history.lookup(lab, Username="a", EventName="b")


def test_a_long_call_table_shows_a_few_rows_and_folds_the_rest(lab):
    """Issue 27: a step's table of a hundred calls is a few rows, then a <details> with the others (and the same
    for its CLI commands); a short one is shown whole."""
    ec2 = lab.client("ec2")
    with Stubber(ec2) as stub:
        calls.next_cell()
        for n in range(12):
            stub.add_response("create_tags", {})
            ec2.create_tags(Resources=[f"vpc-{n}"], Tags=[{"Key": "owner", "Value": "ada"}])
        calls.next_cell()
    shown = calls.step_calls(lab, 1)._repr_html_()
    before, _, folded = shown.partition("<details")
    assert "vpc-7" in before and "vpc-8" not in before and "vpc-11" in folded
    assert "<summary" in folded and "the other 4 rows (4 calls)" in folded and "the other 4 commands" in folded
    assert shown.count("aws ec2 create-tags") == 12 and shown.count("</details>") == 2
    with Stubber(ec2) as stub:
        calls.next_cell()
        stub.add_response("create_vpc", {"Vpc": {"VpcId": "vpc-1"}})
        ec2.create_vpc(CidrBlock="10.0.0.0/16")
        calls.next_cell()
    assert "<details" not in calls.step_calls(lab, 1)._repr_html_()
