"""How one recorded request becomes a CloudTrail event: names, error codes in each protocol, what is left out."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from labkit.localcloud.cloudtrail.events import Recorded, event_name, is_management, parse_error

ERRORS = [
    (b'{"__type": "com.amazonaws.secretsmanager#AccessDeniedException", "message": "User: x is not authorized"}',
     None, ("AccessDeniedException", "User: x is not authorized")),
    (b"<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized &amp; no"
     b"</Message></Error></Errors></Response>", None, ("UnauthorizedOperation", "You are not authorized & no")),
    (b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>", None, ("AccessDenied", "Access Denied")),
    (b"", "ResourceNotFoundException:http://internal", ("ResourceNotFoundException", None)),
]


@pytest.mark.parametrize("body, header, expected", ERRORS)
def test_error_codes_in_every_protocol(body, header, expected):
    assert parse_error(body, header) == expected


def test_lambda_event_names_carry_the_api_version_and_data_events_are_not_management():
    assert event_name("lambda", "CreateFunction") == "CreateFunction20150331"
    assert event_name("lambda", "UpdateFunctionConfiguration") == "UpdateFunctionConfiguration20150331v2"
    assert event_name("secretsmanager", "GetSecretValue") == "GetSecretValue"
    assert not is_management("lambda", "Invoke") and not is_management("s3", "PutObject")
    assert is_management("s3", "CreateBucket") and is_management("secretsmanager", "GetSecretValue")


def _recorded(service, operation, params, status=200, body=None):
    return Recorded(7, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp(),
                    "arn:aws:iam::123456789012:user/gone", "AKIAEXAMPLE", service, operation, "us-east-1", params,
                    status, "127.0.0.1", "ua", body)


def test_an_ec2_refusal_is_a_client_error_and_secrets_are_hidden():
    event = _recorded("ec2", "RunInstances", {"UserData": "IyEvYmluL3NoCg==", "ImageId": "ami-1"}, 403,
                      b"<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>no</Message></Error>"
                      b"</Errors></Response>").record()
    assert event["errorCode"] == "Client.UnauthorizedOperation"
    assert event["requestParameters"] == {"instancesSet": {"items": [{"imageId": "ami-1"}]},
                                          "userData": "<sensitiveDataRemoved>"}  # as AWS records RunInstances
    assert event["readOnly"] is False and event["userIdentity"]["userName"] == "gone"


def test_a_lookup_event_carries_the_record_as_a_json_string():
    event = _recorded("secretsmanager", "GetSecretValue", {"SecretId": "order-db-secret"}).lookup_event()
    assert event["ReadOnly"] == "true" and event["Username"] == "gone"
    assert event["Resources"] == [{"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": "order-db-secret"}]
    record = json.loads(event["CloudTrailEvent"])
    assert record["eventTime"] == "2026-01-01T00:00:00Z" and record["eventID"] == event["EventId"]
    assert len(event["EventId"]) == 36 and record["requestID"] != event["EventId"]


def _sent(service: str, operation: str, params: dict) -> dict:
    """The flat parameters boto3 sends for ``operation`` (botocore's own serializer)."""
    import botocore.serialize
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    serializer = botocore.serialize.create_serializer(model.metadata["protocol"])
    return serializer.serialize_to_request(params, model.operation_model(operation))["body"]


@pytest.mark.parametrize("operation, params, recorded", [
    # AWS's own examples (CloudTrail user guide, "log file examples")
    ("StartInstances", {"InstanceIds": ["i-ebeaf9e2"]}, {"instancesSet": {"items": [{"instanceId": "i-ebeaf9e2"}]}}),
    ("StopInstances", {"InstanceIds": ["i-ebeaf9e2"], "Force": False},
     {"instancesSet": {"items": [{"instanceId": "i-ebeaf9e2"}]}, "force": False}),
    ("RunInstances", {"ImageId": "ami-1", "MinCount": 1, "MaxCount": 1, "InstanceType": "t3.micro",
                      "SecurityGroupIds": ["sg-1"], "UserData": "IyEvYmluL3NoCg==",
                      "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "lab", "Value": "7"}]}]},
     {"instancesSet": {"items": [{"imageId": "ami-1", "minCount": 1, "maxCount": 1}]}, "instanceType": "t3.micro",
      "groupSet": {"items": [{"groupId": "sg-1"}]}, "userData": "<sensitiveDataRemoved>",
      "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": [{"key": "lab", "value": "7"}]}]}}),
    ("ModifyInstanceAttribute", {"InstanceId": "i-1", "UserData": {"Value": b"#!/bin/sh\necho secret"}},
     {"instanceId": "i-1", "userData": {"value": "<sensitiveDataRemoved>"}}),  # user data is hidden wherever sent
    ("AuthorizeSecurityGroupIngress", {"GroupId": "sg-1", "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "UserIdGroupPairs": [{"GroupId": "sg-2"}]}]},
     {"groupId": "sg-1", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 3306, "toPort": 3306,
                                                      "groups": {"items": [{"groupId": "sg-2"}]}}]}}),
    ("DescribeInstances", {"Filters": [{"Name": "tag:lab", "Values": ["orders"]}]},
     {"filterSet": {"items": [{"name": "tag:lab", "valueSet": {"items": [{"value": "orders"}]}}]}}),
    ("CreateTags", {"Resources": ["vpc-1"], "Tags": [{"Key": "lab", "Value": "orders"}]},
     {"resourcesSet": {"items": [{"resourceId": "vpc-1"}]}, "tagSet": {"items": [{"key": "lab", "value": "orders"}]}}),
])
def test_ec2_request_parameters_are_item_sets_as_aws_records_them(operation, params, recorded):
    event = _recorded("ec2", operation, _sent("ec2", operation, params)).record()
    assert event["requestParameters"] == recorded
    assert event["responseElements"] is None


def test_query_lists_are_arrays_typed_and_secrets_stay_hidden():
    sent = _sent("rds", "CreateDBInstance", {
        "DBInstanceIdentifier": "orders-db", "DBInstanceClass": "db.t3.micro", "Engine": "mysql",
        "AllocatedStorage": 20, "MasterUsername": "admin", "MasterUserPassword": "pw-Secret-1",
        "VpcSecurityGroupIds": ["sg-1", "sg-2"], "PubliclyAccessible": False})
    event = _recorded("rds", "CreateDBInstance", sent).lookup_event()
    shown = json.loads(event["CloudTrailEvent"])["requestParameters"]
    assert shown["vpcSecurityGroupIds"] == ["sg-1", "sg-2"] and shown["allocatedStorage"] == 20
    assert shown["publiclyAccessible"] is False and shown["dBInstanceIdentifier"] == "orders-db"
    assert shown["masterUserPassword"] == "HIDDEN_DUE_TO_SECURITY_REASONS" and "pw-Secret-1" not in str(event)


def test_ec2_resources_are_found_in_lists_of_ids():
    event = _recorded("ec2", "TerminateInstances", _sent("ec2", "TerminateInstances", {"InstanceIds": ["i-1"]}))
    assert event.resources() == [{"ResourceType": "AWS::EC2::Instance", "ResourceName": "i-1"}]


def test_a_role_sessions_identity_says_when_the_session_began_and_assume_role_is_read_only():
    session = Recorded(9, 1767225600.0, "arn:aws:sts::123456789012:assumed-role/gone-role/validator", "ASIAEXAMPLE",
                       "secretsmanager", "GetSecretValue", "us-east-1", {"SecretId": "s"}, 200, "127.0.0.1", "ua",
                       session_created=1767225000.0)
    context = session.record()["userIdentity"]["sessionContext"]
    assert list(context) == ["sessionIssuer", "webIdFederationData", "attributes"]
    assert context["attributes"] == {"creationDate": "2025-12-31T23:50:00Z", "mfaAuthenticated": "false"}
    assume = _recorded("sts", "AssumeRole", _sent("sts", "AssumeRole", {
        "RoleArn": "arn:aws:iam::123456789012:role/r", "RoleSessionName": "s1"})).record()
    assert assume["readOnly"] is True
    assert assume["requestParameters"] == {"roleArn": "arn:aws:iam::123456789012:role/r", "roleSessionName": "s1"}


def test_a_lookup_reads_the_history_as_of_its_start_while_events_are_kept(monkeypatch):
    """Another request's event kept while LookupEvents reads the history (CI once answered a lookup with
    InternalError: 'deque mutated during iteration'): the lookup reads the history as it was when it began."""
    import types

    from labkit.localcloud.cloudtrail import service as trail_service

    ctx = types.SimpleNamespace(state=types.SimpleNamespace(journal=lambda name, keep: None))
    trail = trail_service.CloudTrailService(ctx)
    for _ in range(5):
        trail._keep(_recorded("sts", "GetCallerIdentity", {}))
    matches, kept = trail_service._matches, []

    def matches_while_another_request_is_kept(event, key, value):
        if not kept:
            kept.append(trail._keep(_recorded("sts", "GetCallerIdentity", {})))
        return matches(event, key, value)

    monkeypatch.setattr(trail_service, "_matches", matches_while_another_request_is_kept)
    found = trail.lookup({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "GetCallerIdentity"}]})
    assert kept and len(found["Events"]) == 5 and len(trail.events) == 6
