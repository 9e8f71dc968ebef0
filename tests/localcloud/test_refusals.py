"""The control plane refuses what AWS refuses: parameters, through plain boto3, with AWS's code, status and message.

A client with ``parameter_validation=False`` sends what boto3 would refuse itself (a minimum, a missing member), as
the AWS CLI with a hand-made request, or another SDK, does: the server must answer as AWS's does.
"""
from __future__ import annotations

import io
import zipfile

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from labkit.localcloud import control
from tests.helpers import make_zip
from tests.helpers.lambdas import LAMBDA_TRUST

RAW = Config(parameter_validation=False, retries={"max_attempts": 1})
BUCKET_TAKEN = ("The requested bucket name is not available. The bucket namespace is shared by all users of the system. "
                "Please select a different name and try again.")


def _refused(call, code: str, status: int) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    error, meta = caught.value.response["Error"], caught.value.response["ResponseMetadata"]
    assert (error["Code"], meta["HTTPStatusCode"]) == (code, status), caught.value.response
    return error["Message"]


def _zip() -> bytes:
    return make_zip({"lambda_function.py": "def lambda_handler(event, context):\n    return 1\n"})


@pytest.fixture(scope="module")
def role(cloud) -> str:
    iam = cloud.client("iam")
    try:
        return iam.get_role(RoleName="refusals-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="refusals-role", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]


def _create(cloud, role: str, name: str, **overrides):
    lam = cloud.client("lambda", config=RAW)
    spec = {"FunctionName": name, "Runtime": "python3.11", "Role": role, "Handler": "lambda_function.lambda_handler",
            "Code": {"ZipFile": _zip()}, **overrides}
    return lambda: lam.create_function(**spec)


@pytest.mark.parametrize("overrides, message", [
    ({"MemorySize": 10241}, "1 validation error detected: Value '10241' at 'memorySize' failed to satisfy constraint: "
                            "Member must have value less than or equal to 10240"),
    ({"MemorySize": 64}, "1 validation error detected: Value '64' at 'memorySize' failed to satisfy constraint: "
                         "Member must have value greater than or equal to 128"),
    ({"Timeout": 901}, "1 validation error detected: Value '901' at 'timeout' failed to satisfy constraint: "
                       "Member must have value less than or equal to 900"),
    ({"Description": "d" * 257}, f"1 validation error detected: Value '{'d' * 257}' at 'description' failed to "
                                 "satisfy constraint: Member must have length less than or equal to 256"),
])
def test_lambda_limits_are_refused_with_the_validation_message(cloud, role, overrides, message):
    assert _refused(_create(cloud, role, "refused-limits", **overrides), "ValidationException", 400) == message
    assert "refused-limits" not in [f["FunctionName"] for f in cloud.client("lambda").list_functions()["Functions"]]


def test_two_failures_are_counted_in_one_message(cloud, role):
    message = _refused(_create(cloud, role, "refused-two", MemorySize=20000, Timeout=3600), "ValidationException", 400)
    assert message.startswith("2 validation errors detected: ")
    assert "Value '20000' at 'memorySize'" in message and "Value '3600' at 'timeout'" in message


def test_an_update_beyond_the_limits_is_refused_and_changes_nothing(cloud, role):
    lam = cloud.client("lambda")
    _create(cloud, role, "refused-update")()
    raw = cloud.client("lambda", config=RAW)
    message = _refused(lambda: raw.update_function_configuration(FunctionName="refused-update", MemorySize=20000),
                       "ValidationException", 400)
    assert message.endswith("Member must have value less than or equal to 10240")
    assert lam.get_function_configuration(FunctionName="refused-update")["MemorySize"] == 128
    lam.delete_function(FunctionName="refused-update")


def test_a_plain_function_name_is_at_most_64_characters(cloud, role):
    name = "f" * 65
    assert _refused(_create(cloud, role, name), "InvalidParameterValueException", 400) == (
        f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: Member must "
        "have length less than or equal to 64")


def test_a_blocked_runtime_is_refused_a_deprecated_one_is_not(cloud, role):
    assert _refused(_create(cloud, role, "refused-py37", Runtime="python3.7"), "InvalidParameterValueException",
                    400) == ("The runtime parameter of python3.7 is no longer supported for creating or updating AWS "
                             "Lambda functions. We recommend you use a supported runtime while creating or updating "
                             "functions.")
    message = _refused(_create(cloud, role, "refused-py99", Runtime="python3.99"), "InvalidParameterValueException",
                       400)
    assert message.startswith("Value python3.99 at 'runtime' failed to satisfy constraint: Member must satisfy enum "
                              "value set: [") and message.endswith("] or be a valid ARN") and "python3.13" in message
    _create(cloud, role, "deprecated-py310", Runtime="python3.10")()  # deprecated, creatable until 2027-02-01
    cloud.client("lambda").delete_function(FunctionName="deprecated-py310")


def test_json_services_check_patterns_and_enums_from_their_model(cloud):
    events = cloud.client("events", config=RAW)
    message = _refused(lambda: events.put_rule(Name="has a space", ScheduleExpression="rate(1 day)"),
                       "ValidationException", 400)
    assert message == ("1 validation error detected: Value 'has a space' at 'name' failed to satisfy constraint: "
                       "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+")
    message = _refused(lambda: events.put_rule(Name="bogus-state", ScheduleExpression="rate(1 day)", State="BOGUS"),
                       "ValidationException", 400)
    assert message.startswith("1 validation error detected: Value 'BOGUS' at 'state' failed to satisfy constraint: "
                              "Member must satisfy enum value set: [")
    message = _refused(lambda: events.put_targets(Rule="no-such-rule", Targets=[{"Id": "!@#", "Arn": "arn:x"}]),
                       "ValidationException", 400)
    assert "Value '!@#' at 'targets.1.member.id' failed to satisfy constraint" in message


def test_logs_answer_with_their_own_code(cloud):
    logs = cloud.client("logs", config=RAW)
    message = _refused(lambda: logs.create_log_group(logGroupName="has a space"), "InvalidParameterException", 400)
    assert message.startswith("1 validation error detected: Value 'has a space' at 'logGroupName' failed to satisfy "
                              "constraint: Member must satisfy regular expression pattern: ")


def test_iam_answers_validation_error(cloud):
    iam = cloud.client("iam", config=RAW)
    name = "r" * 65
    assert _refused(lambda: iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST), "ValidationError", 400) \
        == (f"1 validation error detected: Value '{name}' at 'roleName' failed to satisfy constraint: Member must "
            "have length less than or equal to 64")


def test_a_missing_member_is_null(cloud):
    sm = cloud.client("secretsmanager", config=RAW)
    assert _refused(lambda: sm.get_secret_value(), "ValidationException", 400) == (
        "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null")


@pytest.mark.parametrize("name", ["Upper-Case", "under_score", "xn--punycode", "sthree-x", "amzn-s3-demo-x",
                                  "ends-s3alias-s3alias", "a..b", "192.168.5.4", "-leading", "trailing-", "ab",
                                  "x" * 64, "name--ol-s3", "n.mrap", "t--table-s3"])
def test_bucket_names_follow_the_naming_rules(cloud, name):
    s3 = cloud.client("s3", config=RAW)
    with pytest.raises(ClientError) as caught:
        s3.create_bucket(Bucket=name)
    response = caught.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidBucketName", 400)
    assert response["Error"]["Message"] == "The specified bucket is not valid."
    assert response["Error"]["BucketName"] == name
    assert name not in [b["Name"] for b in cloud.client("s3").list_buckets()["Buckets"]]


def test_a_name_another_account_owns_and_your_own_again(cloud):
    s3 = cloud.client("s3")
    assert _refused(lambda: s3.create_bucket(Bucket="test"), "BucketAlreadyExists", 409) == BUCKET_TAKEN
    s3.create_bucket(Bucket="refusals-own-bucket")
    s3.create_bucket(Bucket="refusals-own-bucket")  # us-east-1: your own name again answers 200
    europe = boto3.client("s3", endpoint_url=cloud.endpoint, region_name="eu-west-1",
                          **control.admin_credentials(cloud.home))
    assert _refused(lambda: europe.create_bucket(
        Bucket="refusals-own-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}),
        "BucketAlreadyOwnedByYou", 409) == ("Your previous request to create the named bucket succeeded and you "
                                            "already own it.")
    s3.delete_bucket(Bucket="refusals-own-bucket")


@pytest.mark.parametrize("password, message", [
    ("short", "The parameter MasterUserPassword is not a valid password because it is shorter than 8 characters."),
    ("p" * 42, "The parameter MasterUserPassword is not a valid password because it is longer than 41 characters."),
    ("has space1", "The parameter MasterUserPassword is not a valid password. Only printable ASCII characters besides "
                   "'/', '@', '\"', ' ' may be used."),
    ("slash/1234", "The parameter MasterUserPassword is not a valid password. Only printable ASCII characters besides "
                   "'/', '@', '\"', ' ' may be used."),
    ("at@12345", "The parameter MasterUserPassword is not a valid password. Only printable ASCII characters besides "
                 "'/', '@', '\"', ' ' may be used."),
])
def test_rds_master_passwords_follow_the_rules(cloud, password, message):
    rds = cloud.client("rds")
    assert _refused(lambda: rds.create_db_instance(
        DBInstanceIdentifier="refused-db", Engine="mysql", DBInstanceClass="db.t3.micro", MasterUsername="admin",
        MasterUserPassword=password, AllocatedStorage=20), "InvalidParameterValue", 400) == message
    assert not [d for d in rds.describe_db_instances()["DBInstances"] if d["DBInstanceIdentifier"] == "refused-db"]


def test_deleting_a_db_instance_needs_a_final_choice(cloud):
    rds = cloud.client("rds")
    assert _refused(lambda: rds.delete_db_instance(DBInstanceIdentifier="any-db"), "InvalidParameterCombination",
                    400) == "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified."


def test_get_function_hands_out_a_link_that_downloads_the_zip(cloud, role):
    import urllib.error
    import urllib.parse
    import urllib.request

    _create(cloud, role, "download-me")()
    try:
        code = cloud.client("lambda").get_function(FunctionName="download-me")["Code"]
        assert code["RepositoryType"] == "S3"
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(code["Location"]).query)
        assert query["X-Amz-Expires"] == ["600"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        with urllib.request.urlopen(code["Location"], timeout=10) as answer:
            downloaded = zipfile.ZipFile(io.BytesIO(answer.read()))
        assert downloaded.read("lambda_function.py") == b"def lambda_handler(event, context):\n    return 1\n"
        tampered = code["Location"].replace("X-Amz-Signature=", "X-Amz-Signature=0")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(tampered, timeout=10)
        assert refused.value.code == 403 and b"SignatureDoesNotMatch" in refused.value.read()
    finally:
        cloud.client("lambda").delete_function(FunctionName="download-me")
