"""Presigned URLs: S3 takes them as AWS does and refuses them with S3's own errors.

boto3 presigns S3 URLs in us-east-1 with SigV2 by default, with SigV4 when the client says ``s3v4``; both are
checked. Every URL is opened as a browser would (urllib, no AWS library).
"""
from __future__ import annotations

import datetime as dt
import re
from unittest import mock

import pytest
from botocore.config import Config

from tests.helpers import open_url
from tests.helpers.iam import create_user, policy_document

ACCOUNT = "123456789012"
BUCKET = "presign-lab-reports"
KEY = "reports/daily.csv"
BODY = b"order_id,total\n1,9.50\n"
TEXT = "text/plain"


def _error(body: bytes) -> dict[str, str]:
    return dict(re.findall(r"<([\w-]+)>([^<]*)</\1>", body.decode()))


V4 = Config(signature_version="s3v4")


@pytest.fixture(scope="module")
def bucket(cloud):
    client = cloud.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    return BUCKET


@pytest.fixture()
def s3(cloud, bucket):
    return cloud.client("s3", config=V4)


@pytest.mark.parametrize("config, marker", [(None, "Signature="), (V4, "X-Amz-Signature=")], ids=["sigv2", "sigv4"])
def test_a_presigned_get_and_put_work_from_a_plain_http_client(cloud, bucket, config, marker):
    s3 = cloud.client("s3", config=config)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=300)
    assert marker in url
    assert open_url(url) == (200, BODY)
    tampered = url.replace("daily.csv", "other.csv")
    assert _error(open_url(tampered)[1])["Code"] == "SignatureDoesNotMatch"  # a URL opens only what it signed
    upload = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "uploads/a.txt",
                                                             "ContentType": TEXT})
    assert open_url(upload, "PUT", b"from a browser")[0] == 200
    assert s3.get_object(Bucket=BUCKET, Key="uploads/a.txt")["Body"].read() == b"from a browser"


@pytest.mark.parametrize("config, token", [(None, "x-amz-security-token="), (V4, "X-Amz-Security-Token=")],
                         ids=["sigv2", "sigv4"])
def test_a_role_sessions_url_carries_its_token(cloud, bucket, config, token):
    iam = cloud.client("iam")
    trust = policy_document({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                     "Action": "sts:AssumeRole"})
    try:
        role = iam.get_role(RoleName="presign-reader")["Role"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="presign-reader", AssumeRolePolicyDocument=trust)["Role"]
        iam.put_role_policy(RoleName="presign-reader", PolicyName="read", PolicyDocument=policy_document(
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}))
    creds = cloud.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="share")["Credentials"]
    session = cloud.client("s3", aws_access_key_id=creds["AccessKeyId"],
                           aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"],
                           config=config)
    url = session.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY})
    assert token in url
    assert open_url(url) == (200, BODY)
    without_token = re.sub(rf"&{token}[^&]*", "", url)
    status, body = open_url(without_token)
    assert status == 403 and _error(body)["Code"] == "InvalidToken"
    denied = session.generate_presigned_url("put_object",
                                            Params={"Bucket": BUCKET, "Key": "no.txt", "ContentType": TEXT})
    status, body = open_url(denied, "PUT", b"x")
    assert status == 403 and _error(body)["Code"] == "AccessDenied"
    assert "assumed-role/presign-reader/share is not authorized to perform: s3:PutObject" in _error(body)["Message"]


def test_a_tampered_signature_does_not_match(s3):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY})
    signature = re.search(r"X-Amz-Signature=([0-9a-f]+)", url).group(1)
    tampered = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    status, body = open_url(tampered)
    assert status == 403
    assert _error(body)["Code"] == "SignatureDoesNotMatch"
    assert _error(body)["Message"] == ("The request signature we calculated does not match the signature you "
                                       "provided. Check your key and signing method.")


def test_an_expired_sigv2_url_is_refused_with_s3s_expiry(cloud, bucket):
    with mock.patch("botocore.auth.time.time", return_value=dt.datetime.now().timestamp() - 7200):
        url = cloud.client("s3").generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY})
    status, body = open_url(url)
    error = _error(body)
    assert (status, error["Code"], error["Message"]) == (403, "AccessDenied", "Request has expired")
    assert {"Expires", "ServerTime"} <= set(error) and "X-Amz-Expires" not in error


def test_an_expired_url_is_refused_with_s3s_expiry(s3):
    signed_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0) - dt.timedelta(hours=2)
    with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
        url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=3600)
    status, body = open_url(url)
    error = _error(body)
    assert status == 403
    assert (error["Code"], error["Message"], error["X-Amz-Expires"]) == ("AccessDenied", "Request has expired", "3600")
    assert error["Expires"] == (signed_at + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    server_time = dt.datetime.strptime(error["ServerTime"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(server_time - (signed_at + dt.timedelta(hours=2))) < dt.timedelta(minutes=1)  # real time
    assert {"RequestId", "HostId"} <= set(error)


@pytest.mark.parametrize("expires, message", [
    (604801, "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less "
             "than 604800 seconds"),
    (-5, "X-Amz-Expires must be non-negative"),
])
def test_a_bad_expiry_is_a_query_parameters_error(s3, expires, message):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=expires)
    status, body = open_url(url)
    assert (status, _error(body)["Code"], _error(body)["Message"]) == (
        400, "AuthorizationQueryParametersError", message)


def test_an_incomplete_query_signature_names_the_parameters(s3):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY})
    status, body = open_url(re.sub(r"&X-Amz-Expires=\d+", "", url))
    assert status == 400 and _error(body)["Code"] == "AuthorizationQueryParametersError"
    assert _error(body)["Message"].startswith("Query-string authentication version 4 requires the X-Amz-Algorithm")


@pytest.mark.parametrize("config", [None, V4], ids=["sigv2", "sigv4"])
def test_an_unknown_key_is_invalid(cloud, bucket, config):
    stranger = cloud.client("s3", aws_access_key_id="AKIAUNKNOWNUNKNOWN00", aws_secret_access_key="x" * 40,
                            config=config)
    url = stranger.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY})
    status, body = open_url(url)
    assert status == 403
    assert (_error(body)["Code"], _error(body)["Message"]) == (
        "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")


def test_a_principal_denied_get_object_gets_access_denied(cloud, s3):
    keys = create_user(cloud, "presign-no-read", {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"},
                 {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"})
    client = cloud.client("s3", config=V4, **keys)
    url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY})
    status, body = open_url(url)
    assert status == 403 and _error(body)["Code"] == "AccessDenied"
    assert _error(body)["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/presign-no-read is not authorized to perform: s3:GetObject on resource: "
        f'"arn:aws:s3:::{BUCKET}/{KEY}" with an explicit deny in an identity-based policy')
    listing = client.generate_presigned_url("list_objects_v2", Params={"Bucket": BUCKET})
    assert open_url(listing)[0] == 200  # what the policy allows, the same URL kind may do


def test_a_presigned_query_api_call_is_verified_too(cloud):
    url = cloud.client("sts").generate_presigned_url("get_caller_identity", HttpMethod="GET")
    status, body = open_url(url)
    assert status == 200 and b"user/lab-admin" in body
    status, body = open_url(url.replace("Action=GetCallerIdentity", "Action=GetSessionToken"))
    assert status == 403 and b"SignatureDoesNotMatch" in body
