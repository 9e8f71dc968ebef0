"""Reproduce the tutorial's "Troubleshooting Handled" cases with probe copies of order-validator.

Probes are separate functions, a separate secret and a security group of their own (named
``<lab>-probe-...``), so the real system is never broken; ``cleanup`` removes them (teardown does too).
The network cases are real on both targets: a probe in its own group is admitted by neither the Secrets
Manager endpoint's group nor the RDS group, so its connections are dropped until a rule admits it.
"""
from __future__ import annotations

import json

import pandas as pd
from botocore.exceptions import ClientError

from labkit import functions, iam, network, troubleshoot_iam
from labkit.errors import if_exists
from labkit.names import PROBE_CASES, log_group, probe_name
from labkit.session import Lab
from labkit.tagging import error_code, tag_spec

__all__ = ["VALID_ORDER", "admit_probe", "cleanup", "deploy_probe", "ensure_probe_group", "fix_secret", "probe_name",
           "secret_keys_frame", "try_order", "write_broken_secret"]

VALID_ORDER = {"customer_name": "Troubleshooting", "product": "Probe", "quantity": 1, "amount": "1.00"}


def deploy_probe(lab: Lab, case: str, with_layer: bool = True, timeout: int = 30,
                 env: dict[str, str] | None = None, role: str = iam.VALIDATOR_ROLE, in_vpc: bool = True,
                 own_group: bool = False) -> str:
    """A copy of order-validator for one case: the same code and role, with the case's mistake.

    ``own_group`` puts it in the probe security group instead of ``lambda-sg``: same subnets, but no rule
    of the lab admits it anywhere. A probe that reads the probe secret (the "secret" case) runs as a probe role
    that may read it (troubleshoot_iam.secret_probe_role): the lab's role may not, in least-privilege mode."""
    name = probe_name(lab, case)
    vpc = functions.vpc_config(lab) if in_vpc else None
    if own_group and vpc:
        vpc = {**vpc, "SecurityGroupIds": [ensure_probe_group(lab)]}
    reads_probe_secret = (env or {}).get("DB_SECRET_NAME") == probe_name(lab, "secret")
    if reads_probe_secret and role == iam.VALIDATOR_ROLE:
        role = troubleshoot_iam.secret_probe_role(lab)
    functions.ensure_function(lab, name, "order_validator", role,
                              {"DB_SECRET_NAME": iam.SECRET_NAME, **(env or {})}, timeout=timeout, memory=256,
                              layers=[functions.ensure_layer(lab)] if with_layer else [], vpc=vpc)
    if reads_probe_secret:
        troubleshoot_iam.await_secret_access(lab, name, VALID_ORDER)
    return name


def ensure_probe_group(lab: Lab) -> str:
    """The probe's own security group in the lab's VPC (outbound open, as every new group)."""
    ec2 = lab.client("ec2")
    vpc_id = network.vpc_ids(lab)["vpc_id"]
    name = probe_name(lab, "sg")
    found = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                  {"Name": "group-name", "Values": [name]}])["SecurityGroups"]
    if found:
        return found[0]["GroupId"]
    return ec2.create_security_group(GroupName=name, Description="Troubleshooting probe: admitted nowhere",
                                     VpcId=vpc_id, TagSpecifications=tag_spec(lab, "security-group", name))["GroupId"]


PROBE_RULES = {"endpoints": 443, "rds": 3306}


def admit_probe(lab: Lab, role: str) -> pd.DataFrame:
    """The fix for a network case: let the probe group in to ``role``'s group ("endpoints" or "rds")."""
    groups = network.security_group_ids(lab)
    network.allow_from_group(lab, groups[role], PROBE_RULES[role], ensure_probe_group(lab), "troubleshooting probe")
    rules = network.security_groups_frame(lab)
    return rules[rules["group"] == network.SG_NAMES[role]].reset_index(drop=True)


def try_order(lab: Lab, function: str) -> pd.DataFrame:
    """Invoke ``function`` with a valid order and show what came back, error or not."""
    result = functions.invoke(lab, function, VALID_ORDER)
    payload = result.payload if isinstance(result.payload, dict) else {"value": result.payload}
    return pd.DataFrame([{"function": function, "FunctionError": result.function_error or "-",
                          "errorType": payload.get("errorType", "-"),
                          "answer": payload.get("errorMessage") or json.dumps(payload)}])


def write_broken_secret(lab: Lab) -> str:
    """A secret in the wrong shape (``user``/``pass``, no host): the tutorial's "secret key error". It fails on its
    keys, before any login, so it holds no real password (nothing of the lab's secret is read or copied)."""
    name = probe_name(lab, "secret")
    _put_secret(lab, name, {"user": "admin", "pass": "not-a-real-password", "database": "ordersdb"})
    return name


def fix_secret(lab: Lab) -> str:
    """The fix: the probe reads a secret in the RDS-credentials shape (username, password, host, port, dbname),
    the lab's own ``order-db-secret`` (step 9), instead of the broken one; returns that secret's name. The password
    stays in the one secret that holds it."""
    probe = probe_name(lab, "secret")
    lam = lab.client("lambda")
    variables = lam.get_function_configuration(FunctionName=probe).get("Environment", {}).get("Variables", {})
    if variables.get("DB_SECRET_NAME") != iam.SECRET_NAME:
        lam.update_function_configuration(FunctionName=probe, Environment={"Variables": {
            **variables, "DB_SECRET_NAME": iam.SECRET_NAME}})
        lam.get_waiter("function_updated_v2").wait(FunctionName=probe)
    return iam.SECRET_NAME


def _put_secret(lab: Lab, name: str, value: dict) -> None:
    sm = lab.client("secretsmanager")
    try:
        sm.put_secret_value(SecretId=name, SecretString=json.dumps(value))
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        sm.create_secret(Name=name, SecretString=json.dumps(value), Tags=lab.tags)


def secret_keys_frame(lab: Lab, name: str) -> pd.DataFrame:
    """The keys a secret holds (never its values)."""
    text = lab.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    keys = sorted(json.loads(text))
    needed = ["dbname", "host", "password", "port", "username"]
    return pd.DataFrame([{"key": k, "present": k in keys} for k in sorted(set(keys) | set(needed))])


def cleanup(lab: Lab) -> pd.DataFrame:
    """Delete every probe function, the probe roles, the probe secret and the probe group; return what was removed."""
    lam, removed = lab.client("lambda"), []
    for case in PROBE_CASES:
        try:
            lam.delete_function(FunctionName=probe_name(lab, case))
            removed.append({"kind": "function", "name": probe_name(lab, case)})
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        if_exists(lambda: lab.client("logs").delete_log_group(logGroupName=log_group(probe_name(lab, case))),
                  f"deleting the log group of {probe_name(lab, case)}")
    sm = lab.client("secretsmanager")
    try:  # a forced delete "succeeds" for a secret that does not exist, so look first
        sm.describe_secret(SecretId=probe_name(lab, "secret"))
        sm.delete_secret(SecretId=probe_name(lab, "secret"), ForceDeleteWithoutRecovery=True)
        removed.append({"kind": "secret", "name": probe_name(lab, "secret")})
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    removed += troubleshoot_iam.delete_probe_roles(lab)
    removed += _remove_probe_group(lab)
    return pd.DataFrame(removed, columns=["kind", "name"])


def _remove_probe_group(lab: Lab) -> list[dict]:
    """Revoke the rules that admit the probe group, then delete it (on AWS, once Lambda has released its
    network interfaces; until then it stays, tagged, for teardown)."""
    ec2 = lab.client("ec2")
    found = ec2.describe_security_groups(Filters=[*lab.tag_filter(),
                                                  {"Name": "group-name", "Values": [probe_name(lab, "sg")]}])
    removed = []
    for probe in found["SecurityGroups"]:
        for group in ec2.describe_security_groups(Filters=lab.tag_filter())["SecurityGroups"]:
            for perm in group.get("IpPermissions", []):
                pairs = [p for p in perm.get("UserIdGroupPairs", []) if p.get("GroupId") == probe["GroupId"]]
                if pairs:
                    ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[{
                        "IpProtocol": perm["IpProtocol"], "FromPort": perm.get("FromPort"),
                        "ToPort": perm.get("ToPort"), "UserIdGroupPairs": pairs}])
        try:
            ec2.delete_security_group(GroupId=probe["GroupId"])
            removed.append({"kind": "security group", "name": probe["GroupName"]})
        except ClientError as exc:
            if error_code(exc) != "DependencyViolation":
                raise
    return removed
