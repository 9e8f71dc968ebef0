"""The local cloud's event history, as CloudTrail's: who called what, when, with what answer; LookupEvents."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
SECRET_VALUE = "trail-test-Secret-Value-42"


def _policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def history(cloud):
    """A role session (``trail-reader/validator``) denied a secret, and the admin's calls around it."""
    iam, sm = cloud.client("iam"), cloud.client("secretsmanager")
    iam.create_role(RoleName="trail-reader", AssumeRolePolicyDocument=_policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}))
    sm.create_secret(Name="trail-secret", SecretString=SECRET_VALUE)
    cloud.client("s3").create_bucket(Bucket="trail-bucket")
    cloud.client("s3").put_object(Bucket="trail-bucket", Key="data.csv", Body=b"a,b\n")
    creds = cloud.client("sts").assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/trail-reader",
                                            RoleSessionName="validator")["Credentials"]
    keys = {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]}
    session_sm = cloud.client("secretsmanager", **keys)
    with pytest.raises(ClientError) as denied:
        session_sm.get_secret_value(SecretId="trail-secret")
    return {"keys": keys, "denied": denied.value.response["Error"], "session_key": creds["AccessKeyId"]}


def _lookup(cloud, **params) -> list[dict]:
    return cloud.client("cloudtrail").lookup_events(**params)["Events"]


def _by(cloud, key: str, value: str, **params) -> list[dict]:
    return _lookup(cloud, LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}], **params)


def test_a_denied_call_shows_its_error_code_and_the_role_session(cloud, history):
    events = _by(cloud, "Username", "validator")
    denied = next(e for e in events if e["EventName"] == "GetSecretValue")
    record = json.loads(denied["CloudTrailEvent"])
    assert record["errorCode"] == history["denied"]["Code"] == "AccessDeniedException"
    assert "is not authorized to perform: secretsmanager:GetSecretValue" in record["errorMessage"]
    identity = record["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/trail-reader/validator"
    assert identity["sessionContext"]["sessionIssuer"]["userName"] == "trail-reader"
    assert identity["principalId"].endswith(":validator") and identity["accessKeyId"] == history["session_key"]
    assert record["eventSource"] == denied["EventSource"] == "secretsmanager.amazonaws.com"
    assert record["requestParameters"] == {"secretId": "trail-secret"} and record["readOnly"] is True
    assert denied["ReadOnly"] == "true" and denied["AccessKeyId"] == history["session_key"]
    assert {"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": "trail-secret"} in denied["Resources"]


def test_the_admin_is_an_iam_user_and_secrets_and_data_events_are_not_kept(cloud, history):
    created = _by(cloud, "EventName", "CreateSecret")
    record = json.loads(created[0]["CloudTrailEvent"])
    assert record["userIdentity"]["type"] == "IAMUser" and record["userIdentity"]["userName"] == "lab-admin"
    assert created[0]["Username"] == "lab-admin" and created[0]["ReadOnly"] == "false"
    assert record["requestParameters"]["secretString"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert "errorCode" not in record
    everything = json.dumps(_lookup(cloud) + _by(cloud, "EventSource", "s3.amazonaws.com"), default=str)
    assert SECRET_VALUE not in everything
    s3 = [e["EventName"] for e in _by(cloud, "EventSource", "s3.amazonaws.com")]
    assert "CreateBucket" in s3 and "PutObject" not in s3  # an S3 object operation is a data event


def test_lookup_attributes_filter_as_on_aws(cloud, history):
    assert {e["EventName"] for e in _by(cloud, "ResourceName", "trail-secret")} >= {"CreateSecret", "GetSecretValue"}
    assert all(e["ReadOnly"] == "false" for e in _by(cloud, "ReadOnly", "false"))
    assert all(e.get("AccessKeyId") == history["session_key"] for e in _by(cloud, "AccessKeyId", history["session_key"]))
    assert _by(cloud, "EventSource", "iam.amazonaws.com")[0]["EventSource"] == "iam.amazonaws.com"
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)  # the lab clock may run ahead, not this far
    assert _lookup(cloud, StartTime=later) == []


def test_pages_follow_next_token_newest_first(cloud, history):
    trail = cloud.client("cloudtrail")
    first = trail.lookup_events(MaxResults=2)
    second = trail.lookup_events(MaxResults=2, NextToken=first["NextToken"])
    assert len(first["Events"]) == len(second["Events"]) == 2
    times = [e["EventTime"] for e in first["Events"] + second["Events"]]
    assert times == sorted(times, reverse=True)
    assert not {e["EventId"] for e in first["Events"]} & {e["EventId"] for e in second["Events"]}
    pages = list(trail.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "secretsmanager.amazonaws.com"}],
        PaginationConfig={"PageSize": 1}))
    assert len(pages) >= 2


@pytest.mark.parametrize("params, code", [
    ({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "A"},
                           {"AttributeKey": "Username", "AttributeValue": "B"}]}, "InvalidLookupAttributesException"),
    ({"MaxResults": 51}, "InvalidMaxResultsException"),
    ({"StartTime": dt.datetime(2030, 1, 2), "EndTime": dt.datetime(2030, 1, 1)}, "InvalidTimeRangeException"),
    ({"NextToken": "not-a-token"}, "InvalidNextTokenException"),
])
def test_bad_lookups_get_cloudtrails_errors(cloud, history, params, code):
    with pytest.raises(ClientError) as info:
        cloud.client("cloudtrail").lookup_events(**params)
    assert info.value.response["Error"]["Code"] == code


def test_a_token_of_other_parameters_is_refused(cloud, history):
    trail = cloud.client("cloudtrail")
    token = trail.lookup_events(MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as info:
        trail.lookup_events(MaxResults=2, NextToken=token)
    assert info.value.response["Error"]["Code"] == "InvalidNextTokenException"


def test_looking_up_events_needs_cloudtrail_lookup_events(cloud, history):
    with pytest.raises(ClientError) as info:
        cloud.client("cloudtrail", **history["keys"]).lookup_events()
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "cloudtrail:LookupEvents" in info.value.response["Error"]["Message"]


def test_a_role_session_says_when_it_began_and_assume_role_is_read_only(cloud, history):
    assumed = next(e for e in _by(cloud, "EventName", "AssumeRole")
                   if json.loads(e["CloudTrailEvent"])["requestParameters"]["roleSessionName"] == "validator")
    assert assumed["ReadOnly"] == "true" and assumed["Username"] == "lab-admin"
    denied = next(e for e in _by(cloud, "Username", "validator") if e["EventName"] == "GetSecretValue")
    context = json.loads(denied["CloudTrailEvent"])["userIdentity"]["sessionContext"]
    assert context["webIdFederationData"] == {} and context["attributes"]["mfaAuthenticated"] == "false"
    assert context["attributes"]["creationDate"] == json.loads(assumed["CloudTrailEvent"])["eventTime"]


def test_ec2_calls_are_recorded_with_ec2s_item_sets(cloud, history):
    cloud.client("ec2").describe_vpcs(Filters=[{"Name": "tag:trail-test", "Values": ["item-sets"]}])
    event = next(e for e in _by(cloud, "EventName", "DescribeVpcs")
                 if "item-sets" in e["CloudTrailEvent"])
    record = json.loads(event["CloudTrailEvent"])
    assert record["requestParameters"] == {
        "filterSet": {"items": [{"name": "tag:trail-test", "valueSet": {"items": [{"value": "item-sets"}]}}]}}
    assert record["responseElements"] is None and record["readOnly"] is True
    assert (record["eventType"], record["managementEvent"], record["eventCategory"]) == (
        "AwsApiCall", True, "Management")


def test_event_times_are_whole_seconds_as_the_records_event_time(cloud, history):
    """CloudTrail keeps an event's time to the second (the record's eventTime, yyyy-MM-ddTHH:mm:ssZ); LookupEvents
    shows that second, so an object S3 stamps right after a call (LastModified, also whole seconds) is not older."""
    cloud.client("iam").tag_role(RoleName="trail-reader", Tags=[{"Key": "seconds", "Value": "whole"}])
    cloud.client("s3").put_object(Bucket="trail-bucket", Key="after.csv", Body=b"a\n")
    event = _by(cloud, "EventName", "TagRole")[0]
    record_time = dt.datetime.strptime(json.loads(event["CloudTrailEvent"])["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
    assert event["EventTime"].microsecond == 0
    assert event["EventTime"] == record_time.replace(tzinfo=dt.timezone.utc)
    written = cloud.client("s3").head_object(Bucket="trail-bucket", Key="after.csv")["LastModified"]
    assert written >= event["EventTime"]
    assert _by(cloud, "EventName", "TagRole", StartTime=event["EventTime"], EndTime=event["EventTime"])
