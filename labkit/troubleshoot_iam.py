"""The tutorial's "IAM VPC permission error" and a missing permission, reproduced for real with probe roles.

Each case has its own probe role (``<lab>-probe-<case>-role``) and probe function, so the lab's own roles
are never changed: ``vpc_permission_error`` puts a probe in the private subnets with a role that lacks
AWSLambdaVPCAccessExecutionRole (Lambda refuses with InvalidParameterValueException), and
``secret_permission_error`` runs a validator whose role may not read the secret (AccessDeniedException).
``fix_*`` applies the fix and shows the same call succeed. The secret-format case's probe has a role of its own
too (:func:`secret_probe_role`): it reads the probe secret, which the lab's validator role may not read in
least-privilege mode (only ``order-db-secret``).
"""
from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_exception, retry_if_result, stop_after_delay, wait_fixed

from labkit import functions, iam
from labkit.errors import error_code, if_exists
from labkit.lookups import function_configuration
from labkit.names import SECRET_NAME, probe_name
from labkit.session import Lab

__all__ = ["await_secret_access", "broader_than_reading", "delete_probe_roles", "fix_secret_permission",
           "fix_vpc_permission", "may_create_network_interfaces", "may_read_secret", "probe_role_name",
           "secret_permission_error", "secret_probe_role", "vpc_permission_error"]

AWS_POLICY = "arn:aws:iam::aws:policy/"
BASIC = "service-role/AWSLambdaBasicExecutionRole"
VPC_ACCESS = "service-role/AWSLambdaVPCAccessExecutionRole"
# case -> the managed policies its probe role starts with (each lacks exactly what the case is about)
CASES = {"no-vpc-access": [BASIC, "SecretsManagerReadWrite"], "no-secret-access": [BASIC, VPC_ACCESS],
         "secret": [BASIC, VPC_ACCESS]}
SECRET_POLICY = "read-order-db-secret"
PROBE_SECRET_POLICY = "read-the-probe-and-lab-secrets"
IAM_PROPAGATION = 60  # seconds: on AWS a policy change reaches Lambda after a few seconds


def _inline(lab: Lab, case: str) -> dict[str, dict[str, Any]]:
    """The inline policies the case's probe role starts with: the secret-format probe reads the probe secret
    (the broken one) and, once fixed, the lab's secret; nothing else."""
    if case != "secret":
        return {}
    arn = f"arn:aws:secretsmanager:{lab.region}:{lab.account_id}:secret:"
    return {PROBE_SECRET_POLICY: {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
        "Resource": [f"{arn}{probe_name(lab, 'secret')}-*", f"{arn}{SECRET_NAME}-*"]}]}}


def probe_role_name(lab: Lab, case: str) -> str:
    return f"{probe_name(lab, case)}-role"


def _ensure_probe_role(lab: Lab, case: str) -> str:
    """The case's probe role, trusted by Lambda, with exactly the case's starting policies."""
    client, name = lab.client("iam"), probe_role_name(lab, case)
    role = if_exists(lambda: client.get_role(RoleName=name)["Role"], f"reading the role {name}")
    if role is None:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "lambda.amazonaws.com"}}]}
        role = client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Tags=lab.tags,
                                  Description=f"Orders Lab troubleshooting probe ({lab.name})")["Role"]
        client.get_waiter("role_exists").wait(RoleName=name)
    attached = {p["PolicyArn"].removeprefix(AWS_POLICY)
                for p in client.list_attached_role_policies(RoleName=name)["AttachedPolicies"]}
    for policy in sorted(set(CASES[case]) - attached):
        client.attach_role_policy(RoleName=name, PolicyArn=AWS_POLICY + policy)
    for policy in sorted(attached - set(CASES[case])):
        client.detach_role_policy(RoleName=name, PolicyArn=AWS_POLICY + policy)
    wanted = _inline(lab, case)
    for inline in set(client.list_role_policies(RoleName=name)["PolicyNames"]) - set(wanted):
        client.delete_role_policy(RoleName=name, PolicyName=inline)
    for inline, document in wanted.items():
        client.put_role_policy(RoleName=name, PolicyName=inline, PolicyDocument=json.dumps(document))
    role_arn: str = role["Arn"]
    return role_arn


def secret_probe_role(lab: Lab) -> str:
    """The role of the secret-format probe: Lambda's basic and VPC policies, and GetSecretValue on exactly the
    probe secret and the lab's secret (in least-privilege mode the lab's validator role may read only the latter,
    so a probe running as it would get AccessDeniedException instead of the format error)."""
    return _ensure_probe_role(lab, "secret")


def await_secret_access(lab: Lab, function: str, event: dict[str, Any]) -> None:
    """Invoke ``function`` until Secrets Manager no longer refuses its new role (on AWS a role's new policy takes
    a few seconds to apply; the local cloud applies it at once), so the next answer is the case's own."""
    def refused() -> bool:
        payload = functions.invoke(lab, function, event).payload
        return isinstance(payload, dict) and "AccessDeniedException" in str(payload.get("errorMessage", ""))

    Retrying(retry=retry_if_result(lambda still: still), stop=stop_after_delay(IAM_PROPAGATION), wait=wait_fixed(3),
             retry_error_callback=lambda _state: None)(refused)


def _until_allowed(call: Any, codes: set[str]) -> Any:
    """Repeat ``call`` while AWS still answers one of ``codes`` (IAM changes take seconds to reach a service)."""
    def not_yet(exc: BaseException) -> bool:
        return isinstance(exc, ClientError) and error_code(exc) in codes

    return Retrying(retry=retry_if_exception(not_yet), stop=stop_after_delay(IAM_PROPAGATION), wait=wait_fixed(3),
                    reraise=True)(call)


def _put_in_vpc(lab: Lab, function: str) -> dict[str, str]:
    """Move ``function`` into the lab's private subnets; AWS's answer as a row."""
    lam = lab.client("lambda")
    try:
        lam.update_function_configuration(FunctionName=function, VpcConfig=functions.vpc_config(lab))
        lam.get_waiter("function_updated_v2").wait(FunctionName=function)
    except ClientError as exc:
        return {"call": "UpdateFunctionConfiguration (VpcConfig: private subnets)", "result": error_code(exc),
                "message": exc.response["Error"].get("Message", "")}
    return {"call": "UpdateFunctionConfiguration (VpcConfig: private subnets)", "result": "OK",
            "message": "the function now runs in the private subnets"}


def _leave_vpc(lab: Lab, function: str) -> None:
    """Take ``function`` out of the VPC (a re-run after the fix starts from the broken state again)."""
    config = function_configuration(lab, function)
    if config and (config.get("VpcConfig") or {}).get("SubnetIds"):
        lam = lab.client("lambda")
        lam.update_function_configuration(FunctionName=function, VpcConfig={"SubnetIds": [], "SecurityGroupIds": []})
        lam.get_waiter("function_updated_v2").wait(FunctionName=function)


def vpc_permission_error(lab: Lab) -> pd.DataFrame:
    """Reproduce "IAM VPC permission error": a probe whose role lacks the ENI permissions, put into the VPC.

    A re-run after the fix first takes the probe out of the VPC (while its role still may), then takes the
    permission away; on AWS that reaches Lambda seconds later, so the move is tried until Lambda refuses it."""
    name = probe_name(lab, "no-vpc-access")
    _leave_vpc(lab, name)
    role = _ensure_probe_role(lab, "no-vpc-access")
    functions.ensure_function(lab, name, "order_validator", role, {"DB_SECRET_NAME": SECRET_NAME}, timeout=30,
                              memory=256, layers=[functions.ensure_layer(lab)], vpc=None)
    deadline = time.monotonic() + IAM_PROPAGATION
    row = _put_in_vpc(lab, name)
    while row["result"] == "OK" and time.monotonic() < deadline:
        _leave_vpc(lab, name)  # IAM had not yet taken the permission away
        time.sleep(5)
        row = _put_in_vpc(lab, name)
    return pd.DataFrame([{"role policies": ", ".join(CASES["no-vpc-access"]), **row}])


def fix_vpc_permission(lab: Lab) -> pd.DataFrame:
    """The tutorial's fix: attach AWSLambdaVPCAccessExecutionRole to the role; the same call now succeeds."""
    lab.client("iam").attach_role_policy(RoleName=probe_role_name(lab, "no-vpc-access"),
                                         PolicyArn=AWS_POLICY + VPC_ACCESS)
    name = probe_name(lab, "no-vpc-access")

    def attempt() -> dict[str, str]:
        row = _put_in_vpc(lab, name)
        if row["result"] == "InvalidParameterValueException":
            raise ClientError({"Error": {"Code": row["result"], "Message": row["message"]}}, "UpdateFunctionConfiguration")
        return row

    return pd.DataFrame([{"role policies": ", ".join([*CASES["no-vpc-access"], VPC_ACCESS]),
                          **_until_allowed(attempt, {"InvalidParameterValueException"})}])


def secret_permission_error(lab: Lab) -> str:
    """Deploy a validator whose role may not read ``order-db-secret``; returns the probe's name."""
    role = _ensure_probe_role(lab, "no-secret-access")
    name = probe_name(lab, "no-secret-access")
    functions.ensure_function(lab, name, "order_validator", role, {"DB_SECRET_NAME": SECRET_NAME}, timeout=30,
                              memory=256, layers=[functions.ensure_layer(lab)], vpc=functions.vpc_config(lab))
    return name


def fix_secret_permission(lab: Lab) -> dict[str, Any]:
    """Grant the probe's role ``secretsmanager:GetSecretValue`` on the lab's secret only; returns the policy."""
    secret_arn = lab.client("secretsmanager").describe_secret(SecretId=SECRET_NAME)["ARN"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                      "Resource": secret_arn}]}
    lab.client("iam").put_role_policy(RoleName=probe_role_name(lab, "no-secret-access"), PolicyName=SECRET_POLICY,
                                      PolicyDocument=json.dumps(policy))
    return policy


def delete_probe_roles(lab: Lab) -> list[dict[str, str]]:
    """Remove the probe roles (their policies first); what was removed."""
    client, removed = lab.client("iam"), []
    for case in CASES:
        name = probe_role_name(lab, case)
        if if_exists(lambda: client.get_role(RoleName=name), f"reading the role {name}") is None:
            continue
        for policy in client.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            client.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        for inline in client.list_role_policies(RoleName=name)["PolicyNames"]:
            client.delete_role_policy(RoleName=name, PolicyName=inline)
        client.delete_role(RoleName=name)
        removed.append({"kind": "role", "name": name})
    return removed


def may_create_network_interfaces(lab: Lab, role: str) -> bool:
    """Whether ``role`` may create the network interfaces Lambda needs to put a function in a VPC."""
    return iam.role_allows(lab, role, "ec2:CreateNetworkInterface", "*")


def _secret_arn(lab: Lab) -> str:
    return str(lab.client("secretsmanager").describe_secret(SecretId=SECRET_NAME)["ARN"])


def may_read_secret(lab: Lab, role: str) -> bool:
    """Whether ``role``'s policies allow ``secretsmanager:GetSecretValue`` on the lab's secret."""
    return iam.role_allows(lab, role, "secretsmanager:GetSecretValue", _secret_arn(lab))


# What a role that only needs to read order-db-secret must not be allowed to do (checked on this secret and on
# another secret of the account): a grant on "*" or "secretsmanager:*" shows up here.
BEYOND_READING = ("secretsmanager:PutSecretValue", "secretsmanager:DeleteSecret", "secretsmanager:UpdateSecret")


def broader_than_reading(lab: Lab, role: str) -> list[str]:
    """What ``role`` may do in Secrets Manager beyond reading the lab's secret (empty: least privilege)."""
    arn, documents = _secret_arn(lab), iam.role_documents(lab, role)
    other = arn.rsplit(":", 1)[0] + ":another-secret-AbCdEf"  # the same account and region, another secret
    found = [f"{action.split(':')[1]} {SECRET_NAME}" for action in BEYOND_READING
             if iam.role_allows(lab, role, action, arn, documents)]
    if iam.role_allows(lab, role, "secretsmanager:GetSecretValue", other, documents):
        found.append("read other secrets of the account")
    return found
