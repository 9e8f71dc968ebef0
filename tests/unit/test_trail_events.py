"""How one recorded request becomes a CloudTrail event: names, error codes in each protocol, what is left out."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from labkit.localcloud.trail_events import Recorded, event_name, is_management, parse_error

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
    assert event["requestParameters"] == {"userData": "HIDDEN_DUE_TO_SECURITY_REASONS", "imageId": "ami-1"}
    assert event["readOnly"] is False and event["userIdentity"]["userName"] == "gone"


def test_a_lookup_event_carries_the_record_as_a_json_string():
    event = _recorded("secretsmanager", "GetSecretValue", {"SecretId": "order-db-secret"}).lookup_event()
    assert event["ReadOnly"] == "true" and event["Username"] == "gone"
    assert event["Resources"] == [{"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": "order-db-secret"}]
    record = json.loads(event["CloudTrailEvent"])
    assert record["eventTime"] == "2026-01-01T00:00:00Z" and record["eventID"] == event["EventId"]
    assert len(event["EventId"]) == 36 and record["requestID"] != event["EventId"]
