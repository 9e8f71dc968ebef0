"""IAM on the local cloud: every caller is a principal, every request is authorized, refusals are AWS's own."""
from __future__ import annotations

import json
import shlex
import stat
import subprocess
import sys

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from labkit.lambda_platform import runtime as lambda_runtime
from labkit.localcloud import control
from tests.helpers import REGION, make_zip
from tests.helpers.iam import create_user, policy_document
from tests.helpers.lambdas import BASIC, LAMBDA_TRUST, create_function, role_arn

ACCOUNT = "123456789012"
VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"


def _error(call) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call()
    err = info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


# -- your computer: the admin user ---------------------------------------------------------------------
def test_admin_keys_are_private_and_identify_the_admin_user(cloud):
    path = cloud.home / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cloud.client("sts").get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/lab-admin"
    attached = cloud.client("iam").list_attached_user_policies(UserName="lab-admin")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AdministratorAccess"]


def test_cloud_env_prints_the_admin_keys_that_work(cloud):
    out = subprocess.run([sys.executable, "-m", "labkit.cli", "cloud", "env", "--home", str(cloud.home)],
                         capture_output=True, text=True, check=True).stdout
    env = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in out.splitlines()
               if line.startswith("export ") and "PATH" not in line)
    assert env["AWS_ACCESS_KEY_ID"] == control.admin_credentials(cloud.home)["aws_access_key_id"]
    sts = boto3.client("sts", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=REGION,
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    assert sts.get_caller_identity()["Arn"].endswith(":user/lab-admin")


def test_admin_keys_survive_a_reset(own_cloud):
    before = control.admin_credentials(own_cloud.home)
    control.reset_cloud(own_cloud.home)
    assert control.admin_credentials(own_cloud.home) == before
    assert own_cloud.client("sts").get_caller_identity()["Arn"].endswith(":user/lab-admin")


# -- who may not call at all ----------------------------------------------------------------------------------
@pytest.mark.parametrize("service, call, code, message", [
    ("sts", lambda c: c.get_caller_identity(), "InvalidClientTokenId", "The security token included in the request is invalid."),
    ("iam", lambda c: c.list_roles(), "InvalidClientTokenId", "The security token included in the request is invalid."),
    ("secretsmanager", lambda c: c.list_secrets(), "UnrecognizedClientException",
     "The security token included in the request is invalid."),
    ("lambda", lambda c: c.list_functions(), "UnrecognizedClientException",
     "The security token included in the request is invalid."),
    ("ec2", lambda c: c.describe_vpcs(), "AuthFailure", "AWS was not able to validate the provided access credentials"),
    ("s3", lambda c: c.list_buckets(), "InvalidAccessKeyId",
     "The AWS Access Key Id you provided does not exist in our records."),
])
def test_unknown_keys_are_refused_with_the_protocols_code(cloud, service, call, code, message):
    client = cloud.client(service, aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x" * 40)
    assert _error(lambda: call(client))[:2] == (code, message)


def test_another_user_with_the_old_dummy_keys_cannot_read_secrets(cloud):
    cloud.client("secretsmanager").create_secret(Name="private-secret", SecretString="s3cr3t")
    other = cloud.client("secretsmanager", aws_access_key_id="test", aws_secret_access_key="test")
    assert _error(lambda: other.get_secret_value(SecretId="private-secret"))[0] == "UnrecognizedClientException"


@pytest.mark.parametrize("service, call, code", [
    ("sts", lambda c: c.get_caller_identity(), "MissingAuthenticationToken"),
    ("lambda", lambda c: c.list_functions(), "MissingAuthenticationTokenException"),
    ("secretsmanager", lambda c: c.list_secrets(), "MissingAuthenticationTokenException"),
    ("s3", lambda c: c.list_objects_v2(Bucket="any-bucket"), "AccessDenied"),
])
def test_unsigned_requests_are_refused(cloud, service, call, code):
    client = boto3.client(service, endpoint_url=cloud.endpoint, region_name=REGION, config=Config(signature_version=UNSIGNED))
    assert _error(lambda: call(client))[0] == code


@pytest.mark.parametrize("service, call, code", [
    ("sts", lambda c: c.get_caller_identity(), "SignatureDoesNotMatch"),
    ("lambda", lambda c: c.list_functions(), "InvalidSignatureException"),
    ("s3", lambda c: c.list_buckets(), "SignatureDoesNotMatch"),
])
def test_a_wrong_secret_key_does_not_match_the_signature(cloud, service, call, code):
    key_id = control.admin_credentials(cloud.home)["aws_access_key_id"]
    client = cloud.client(service, aws_access_key_id=key_id, aws_secret_access_key="not-the-secret")
    assert _error(lambda: call(client))[0] == code


def test_a_session_key_without_its_token_is_invalid(cloud):
    iam = cloud.client("iam")
    iam.create_role(RoleName="assumable", AssumeRolePolicyDocument=policy_document(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}))
    creds = cloud.client("sts").assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/assumable",
                                            RoleSessionName="me")["Credentials"]
    good = cloud.client("sts", aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])
    assert good.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/assumable/me"
    bad = cloud.client("sts", aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"])
    assert _error(bad.get_caller_identity)[0] == "InvalidClientTokenId"


def test_moto_admin_api_is_not_reachable(cloud):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{cloud.endpoint}/moto-api/data.json", timeout=5)
    assert info.value.code == 403


# -- authorization -------------------------------------------------------------------------------------------------
def test_deny_by_default_with_each_protocols_message(cloud):
    keys = create_user(cloud, "nobody")
    who = f"arn:aws:iam::{ACCOUNT}:user/nobody"
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:some-fn"
    assert _error(lambda: cloud.client("lambda", **keys).invoke(FunctionName="some-fn")) == (
        "AccessDeniedException", f"User: {who} is not authorized to perform: lambda:InvokeFunction on resource: {fn} "
                                 "because no identity-based policy allows the lambda:InvokeFunction action", 403)
    code, message, _ = _error(lambda: cloud.client("s3", **keys).put_object(Bucket="some-bucket", Key="k", Body=b"1"))
    assert (code, message) == ("AccessDenied", f'User: {who} is not authorized to perform: s3:PutObject on resource: '
                                               f'"arn:aws:s3:::some-bucket/k" because no identity-based policy allows '
                                               "the s3:PutObject action")
    code, message, _ = _error(lambda: cloud.client("iam", **keys).list_roles())
    assert code == "AccessDenied" and message.startswith(f"User: {who} is not authorized to perform: iam:ListRoles")
    code, message, _ = _error(lambda: cloud.client("ec2", **keys).describe_vpcs())
    assert code == "UnauthorizedOperation" and message.startswith("You are not authorized to perform this operation.")
    code, message, _ = _error(lambda: cloud.client("secretsmanager", **keys).list_secrets())
    assert code == "AccessDeniedException" and "secretsmanager:ListSecrets" in message
    # GetCallerIdentity needs no permission, as on AWS
    assert cloud.client("sts", **keys).get_caller_identity()["Arn"] == who


def test_explicit_deny_wins_over_administrator_access(cloud):
    keys = create_user(cloud, "almost-admin", {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
                 managed=["arn:aws:iam::aws:policy/AdministratorAccess"])
    sm = cloud.client("secretsmanager", **keys)
    arn = sm.create_secret(Name="denied-secret", SecretString="x")["ARN"]
    code, message, status = _error(lambda: sm.get_secret_value(SecretId="denied-secret"))
    assert (code, status) == ("AccessDeniedException", 400)
    # Secrets Manager names the secret as the caller passed it (AWS: "... on resource: simple_bank because ..."),
    # while IAM decided on its ARN
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:user/almost-admin is not authorized to perform: "
                       "secretsmanager:GetSecretValue on resource: denied-secret with an explicit deny in an "
                       "identity-based policy")
    code, message, _ = _error(lambda: sm.get_secret_value(SecretId=arn))
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:user/almost-admin is not authorized to perform: "
                       f"secretsmanager:GetSecretValue on resource: {arn} with an explicit deny in an identity-based policy")


def test_secrets_manager_access_denied_names_the_secret_as_passed(cloud):
    """AWS: "... secretsmanager:GetSecretValue on resource: simple_bank because no identity-based policy allows the
    secretsmanager:GetSecretValue action" for ``--secret-id simple_bank`` (issue 26, spec 9.1)."""
    arn = cloud.client("secretsmanager").create_secret(Name="order-db-secret-26", SecretString="x")["ARN"]
    keys = create_user(cloud, "no-secrets", {"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"})
    sm = cloud.client("secretsmanager", **keys)
    who = f"arn:aws:iam::{ACCOUNT}:user/no-secrets"
    for passed in ("order-db-secret-26", arn, arn[:-7]):  # name, full ARN, partial ARN (without the suffix)
        code, message, status = _error(lambda passed=passed: sm.get_secret_value(SecretId=passed))
        assert (code, status) == ("AccessDeniedException", 400)
        assert message == (f"User: {who} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
                           f"{passed} because no identity-based policy allows the secretsmanager:GetSecretValue action")


def test_resources_are_matched_by_arn(cloud):
    sm = cloud.client("secretsmanager")
    allowed = sm.create_secret(Name="app/allowed", SecretString="a")["ARN"]
    sm.create_secret(Name="app/other", SecretString="b")
    keys = create_user(cloud, "one-secret", {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                       "Resource": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app/allowed-*"})
    mine = cloud.client("secretsmanager", **keys)
    assert mine.get_secret_value(SecretId="app/allowed")["SecretString"] == "a"
    assert mine.get_secret_value(SecretId=allowed)["SecretString"] == "a"
    assert _error(lambda: mine.get_secret_value(SecretId="app/other"))[0] == "AccessDeniedException"


def test_aws_managed_customer_managed_and_group_policies_all_count(cloud):
    iam = cloud.client("iam")
    keys = create_user(cloud, "s3-user", managed=["arn:aws:iam::aws:policy/AmazonS3FullAccess"])
    s3 = cloud.client("s3", **keys)
    s3.create_bucket(Bucket="s3-user-bucket")
    assert _error(lambda: cloud.client("lambda", **keys).list_functions())[0] == "AccessDeniedException"
    policy = iam.create_policy(PolicyName="list-functions", PolicyDocument=policy_document(
        {"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}))["Policy"]["Arn"]
    iam.create_group(GroupName="listers")
    iam.attach_group_policy(GroupName="listers", PolicyArn=policy)
    iam.add_user_to_group(GroupName="listers", UserName="s3-user")
    assert "Functions" in cloud.client("lambda", **keys).list_functions()


def test_assume_role_needs_the_trust_policy(cloud):
    iam = cloud.client("iam")
    iam.create_role(RoleName="lambda-only", AssumeRolePolicyDocument=LAMBDA_TRUST)
    code, message, _ = _error(lambda: cloud.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/lambda-only", RoleSessionName="me"))
    assert code == "AccessDenied"
    assert message.startswith(f"User: arn:aws:iam::{ACCOUNT}:user/lab-admin is not authorized to perform: "
                              f"sts:AssumeRole on resource: arn:aws:iam::{ACCOUNT}:role/lambda-only")


def test_handing_a_role_to_lambda_needs_pass_role(cloud):
    keys = create_user(cloud, "no-pass-role", {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"})
    role = role_arn(cloud.client("iam"))
    code, message, _ = _error(lambda: cloud.client("lambda", **keys).create_function(
        FunctionName="passed", Runtime=lambda_runtime(), Role=role, Handler="lambda_function.lambda_handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18}))
    assert code == "AccessDeniedException"
    assert f"iam:PassRole on resource: {role}" in message


# -- Lambda: the execution role --------------------------------------------------------------------------------
WHOAMI = '''
import os, boto3
def lambda_handler(event, context):
    out = {"arn": boto3.client("sts").get_caller_identity()["Arn"],
           "key_prefix": os.environ["AWS_ACCESS_KEY_ID"][:4], "has_token": bool(os.environ.get("AWS_SESSION_TOKEN"))}
    try:
        boto3.client("secretsmanager").get_secret_value(SecretId="not-for-lambda")
    except Exception as exc:
        out["error"] = exc.response["Error"]
    return out
'''


def test_lambda_runs_as_a_session_of_its_role_named_after_the_function(cloud):
    cloud.client("secretsmanager").create_secret(Name="not-for-lambda", SecretString="x")
    create_function(cloud, "whoami", WHOAMI)
    body = json.loads(cloud.client("lambda").invoke(FunctionName="whoami")["Payload"].read())
    who = f"arn:aws:sts::{ACCOUNT}:assumed-role/test-lambda-role/whoami"
    assert body["arn"] == who and body["key_prefix"] == "ASIA" and body["has_token"]
    assert body["error"]["Code"] == "AccessDeniedException"
    assert body["error"]["Message"].startswith(f"User: {who} is not authorized to perform: secretsmanager:GetSecretValue")


def test_role_not_trusting_lambda_cannot_be_used(cloud):
    iam = cloud.client("iam")
    arn = iam.create_role(RoleName="ec2-trust-only", AssumeRolePolicyDocument=LAMBDA_TRUST.replace("lambda", "ec2"))["Role"]["Arn"]
    lam = cloud.client("lambda")
    assert _error(lambda: lam.create_function(
        FunctionName="untrusted", Runtime=lambda_runtime(), Role=arn, Handler="lambda_function.lambda_handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18}))[:2] == (
        "InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda.")


def _vpc(cloud) -> dict:
    ec2 = cloud.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="fn-sg", Description="fn", VpcId=vpc)["GroupId"]
    return {"SubnetIds": [subnet], "SecurityGroupIds": [group]}


def test_vpc_function_needs_a_role_that_may_manage_network_interfaces(cloud):
    iam, lam = cloud.client("iam"), cloud.client("lambda")
    arn = iam.create_role(RoleName="no-vpc-access", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    iam.attach_role_policy(RoleName="no-vpc-access", PolicyArn=BASIC)
    vpc = _vpc(cloud)
    spec = {"FunctionName": "in-vpc", "Runtime": lambda_runtime(), "Role": arn, "Handler": "lambda_function.lambda_handler",
                "Code": {"ZipFile": b"PK\x05\x06" + b"\x00" * 18}}
    denied = ("InvalidParameterValueException",
              "The provided execution role does not have permissions to call CreateNetworkInterface on EC2")
    assert _error(lambda: lam.create_function(**spec, VpcConfig=vpc))[:2] == denied
    lam.create_function(**spec)  # outside a VPC the role is fine
    assert _error(lambda: lam.update_function_configuration(FunctionName="in-vpc", VpcConfig=vpc))[:2] == denied
    iam.attach_role_policy(RoleName="no-vpc-access", PolicyArn=VPC_POLICY)
    lam.update_function_configuration(FunctionName="in-vpc", VpcConfig=vpc)


SILENT = "def lambda_handler(e, c):\n    print('hello')\n    return 1\n"


def test_a_function_whose_role_may_not_write_logs_leaves_none(cloud):
    iam, lam = cloud.client("iam"), cloud.client("lambda")
    arn = iam.create_role(RoleName="silent-role", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    lam.create_function(FunctionName="silent", Runtime=lambda_runtime(), Role=arn, Handler="lambda_function.lambda_handler",
                        Code={"ZipFile": make_zip({"lambda_function.py": SILENT})})
    lam.get_waiter("function_active_v2").wait(FunctionName="silent")
    assert json.loads(lam.invoke(FunctionName="silent")["Payload"].read()) == 1
    logs = cloud.client("logs")
    assert logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/silent")["logGroups"] == []
    iam.attach_role_policy(RoleName="silent-role", PolicyArn=BASIC)  # the console's default: now it may
    assert json.loads(lam.invoke(FunctionName="silent")["Payload"].read()) == 1
    messages = [e["message"] for e in logs.filter_log_events(logGroupName="/aws/lambda/silent")["events"]]
    assert sum(m.startswith("START RequestId") for m in messages) == 1 and any("hello" in m for m in messages)


def test_no_secret_in_the_cloud_log(cloud):
    text = (cloud.home / "logs" / "cloud.log").read_text(errors="replace")
    assert control.admin_credentials(cloud.home)["aws_secret_access_key"] not in text


def test_aws_managed_policies_are_moto_s_own_made_when_named(cloud):
    """moto_ondemand makes an AWS managed policy when a request names it; every answer is moto's own data."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    data = json.loads(aws_managed_policies_data)
    iam = cloud.client("iam")
    for name in ("AmazonSSMManagedInstanceCore", "AWSLambdaVPCAccessExecutionRole", "ReadOnlyAccess"):
        arn = f"arn:aws:iam::aws:policy{data[name]['Path']}{name}"
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
        assert (policy["Arn"], policy["DefaultVersionId"]) == (arn, data[name]["DefaultVersionId"])
        version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
        assert version["Document"] == data[name]["Document"]
    wrong_path = "arn:aws:iam::aws:policy/AWSLambdaVPCAccessExecutionRole"  # it lives under /service-role/
    assert _error(lambda: iam.get_policy(PolicyArn=wrong_path))[0] == "NoSuchEntity"
    iam.create_role(RoleName="managed-on-demand", AssumeRolePolicyDocument=LAMBDA_TRUST)
    try:
        assert _error(lambda: iam.attach_role_policy(RoleName="managed-on-demand", PolicyArn=wrong_path))[0] == \
            "NoSuchEntity"
    finally:
        iam.delete_role(RoleName="managed-on-demand")  # leave the session cloud as found
    listed = {p["PolicyName"] for page in iam.get_paginator("list_policies").paginate(
        Scope="AWS", PaginationConfig={"PageSize": 1000}) for p in page["Policies"]}
    assert listed == set(data)  # ListPolicies lists every one, as moto does
