"""Reproduce the tutorial's "Troubleshooting Handled" cases with probe copies of order-validator.

Probes are separate functions, a separate secret and a security group of their own (named
``<lab>-probe-...``), so the real system is never broken; ``cleanup`` removes them (teardown does too).
A probe is tried with an order *lookup* (``{"find_order_id": ...}``): it takes the same path a new order
takes (the layer, the secret, the network, the database) and stores nothing, so no probe order ever reaches
the real ``orders`` table (or the lab report). The network cases are real on both targets: a probe in its
own group is admitted by neither the Secrets Manager endpoint's group nor the RDS group, so its connections
are dropped until a rule admits it. The cases themselves (break, evidence, the student's fix and its check)
are in :mod:`labkit.troubleshoot_cases`.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from labkit import display, functions, iam, network, paths, troubleshoot_iam, troubleshoot_nacl
from labkit.errors import if_exists
from labkit.names import PROBE_CASES, VALIDATOR_FUNCTION, log_group, probe_name
from labkit.session import Lab
from labkit.tagging import error_code, tag_spec

__all__ = ["PROBE_LOOKUP", "Attempt", "admit_probe", "cleanup", "compare_frame", "deploy_probe", "ensure_probe_group",
           "fix_secret", "fresh_environment", "group_rules_frame", "last_run_log", "probe_group_id", "probe_name",
           "probe_paths_frame", "revoke_probe", "secret_keys_frame", "try_probe", "write_broken_secret"]

# What a probe is asked: to look up an order that does not exist. The validator reads the secret and queries the
# database for it, exactly as for a new order, but writes nothing (answer: {"status": "not_found", ...}).
PROBE_LOOKUP = {"find_order_id": "0b5e7a1e-0000-4000-8000-00000000be15"}


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
        troubleshoot_iam.await_secret_access(lab, name, PROBE_LOOKUP)
    return name


def fresh_environment(lab: Lab, function: str) -> None:
    """Make the next invocation of ``function`` start a new execution environment, as any configuration change
    does (here its description): a warm one keeps the secret and the database connection it already has."""
    lam = lab.client("lambda")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    lam.update_function_configuration(FunctionName=function, Description=f"Orders Lab troubleshooting probe ({stamp})")
    lam.get_waiter("function_updated_v2").wait(FunctionName=function)


def probe_group_id(lab: Lab) -> str | None:
    """The probe security group's id, None while it does not exist."""
    vpc_id = network.vpc_ids(lab)["vpc_id"]
    found = lab.client("ec2").describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [probe_name(lab, "sg")]}])
    return found["SecurityGroups"][0]["GroupId"] if found["SecurityGroups"] else None


def ensure_probe_group(lab: Lab) -> str:
    """The probe's own security group in the lab's VPC (outbound open, as every new group)."""
    found = probe_group_id(lab)
    if found:
        return found
    ec2, vpc_id, name = lab.client("ec2"), network.vpc_ids(lab)["vpc_id"], probe_name(lab, "sg")
    return ec2.create_security_group(GroupName=name, Description="Troubleshooting probe: admitted nowhere",
                                     VpcId=vpc_id, TagSpecifications=tag_spec(lab, "security-group", name))["GroupId"]


PROBE_RULES = {"endpoints": 443, "rds": 3306}


def admit_probe(lab: Lab, role: str) -> pd.DataFrame:
    """The fix for a network case: let the probe group in to ``role``'s group ("endpoints" or "rds")."""
    groups = network.security_group_ids(lab)
    network.allow_from_group(lab, groups[role], PROBE_RULES[role], ensure_probe_group(lab), "troubleshooting probe")
    return group_rules_frame(lab, role)


def group_rules_frame(lab: Lab, role: str) -> pd.DataFrame:
    """The inbound rules of the lab's ``role`` group ("endpoints", "rds", ...): who may reach it."""
    rules = network.security_groups_frame(lab)
    return rules[rules["group"] == network.SG_NAMES[role]].reset_index(drop=True)


def revoke_probe(lab: Lab, roles: tuple[str, ...] = tuple(PROBE_RULES)) -> None:
    """Take back every rule that lets the probe group into the groups of ``roles`` (the broken state of a case)."""
    ec2 = lab.client("ec2")
    groups = network.security_group_ids(lab)
    probe = ensure_probe_group(lab)
    for role in roles:
        group = ec2.describe_security_groups(GroupIds=[groups[role]])["SecurityGroups"][0]
        _revoke_from(ec2, group, probe)


def _revoke_from(ec2: Any, group: dict, probe_id: str) -> None:
    for perm in group.get("IpPermissions", []):
        pairs = [p for p in perm.get("UserIdGroupPairs", []) if p.get("GroupId") == probe_id]
        if pairs:
            ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[{
                "IpProtocol": perm["IpProtocol"], "FromPort": perm.get("FromPort"), "ToPort": perm.get("ToPort"),
                "UserIdGroupPairs": pairs}])


@dataclass(frozen=True)
class Attempt:
    """One try of a probe: what Lambda answered and how long the caller waited for it."""

    function: str
    function_error: str | None
    error_type: str | None
    answer: str
    seconds: float
    log: str

    @property
    def ok(self) -> bool:
        return self.function_error is None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"function": self.function, "FunctionError": self.function_error or "-",
                              "errorType": self.error_type or "-", "answer": self.answer,
                              "took (s)": round(self.seconds, 2)}])

    def _repr_html_(self) -> str:
        return display.to_html(self.frame())

    def __repr__(self) -> str:
        return display.to_text(self.frame())


def try_probe(lab: Lab, function: str) -> Attempt:
    """Ask ``function`` to look an order up (it reads the secret and queries the database, storing nothing) and
    show what came back, error or not, and after how long."""
    started = time.monotonic()
    result = functions.invoke(lab, function, PROBE_LOOKUP)
    seconds = time.monotonic() - started
    payload = result.payload if isinstance(result.payload, dict) else {"value": result.payload}
    answer = payload.get("errorMessage") or json.dumps(payload)
    return Attempt(function, result.function_error, payload.get("errorType") if result.function_error else None,
                   answer, seconds, result.log_tail)


COMPARED = ["layers", "timeout (s)", "security groups", "role", "DB_SECRET_NAME", "subnets"]


def _settings(lab: Lab, function: str) -> dict[str, str]:
    config = lab.client("lambda").get_function_configuration(FunctionName=function)
    groups = network.security_group_ids(lab)
    names = {v: network.SG_NAMES.get(k, k) for k, v in groups.items()}
    probe_group = probe_group_id(lab)
    if probe_group:
        names[probe_group] = probe_name(lab, "sg")
    vpc = config.get("VpcConfig") or {}
    return {"layers": ", ".join(layer["Arn"].split(":")[-2] + ":" + layer["Arn"].split(":")[-1]
                                for layer in config.get("Layers", [])) or "(none)",
            "timeout (s)": str(config.get("Timeout")),
            "security groups": ", ".join(names.get(g, g) for g in vpc.get("SecurityGroupIds", [])) or "(none)",
            "role": config.get("Role", "").rsplit("/", 1)[-1],
            "DB_SECRET_NAME": config.get("Environment", {}).get("Variables", {}).get("DB_SECRET_NAME", "(not set)"),
            "subnets": f"{len(vpc.get('SubnetIds', []))} private" if vpc.get("SubnetIds") else "(not in a VPC)"}


def compare_frame(lab: Lab, function: str, working: str = VALIDATOR_FUNCTION) -> pd.DataFrame:
    """``function``'s settings beside those of a ``working`` one (order-validator): the rows that differ are
    where to look first."""
    mine, theirs = _settings(lab, function), _settings(lab, working)
    return pd.DataFrame([{"setting": key, function: mine[key], working: theirs[key],
                          "same": mine[key] == theirs[key]} for key in COMPARED])


def last_run_log(lab: Lab, function: str, wait_seconds: float = 30) -> pd.DataFrame:
    """The CloudWatch Logs lines of ``function``'s last run, from its ``START`` line to its ``REPORT`` line:
    time and message (on AWS the lines arrive seconds after the run: awaited up to ``wait_seconds``)."""
    lines = functions.logs_frame(lab, function, limit=200, wait_seconds=wait_seconds)
    starts = lines.index[lines["message"].str.startswith("START RequestId")]
    last = lines.loc[starts[-1]:] if len(starts) else lines
    return last[["time", "message"]].reset_index(drop=True)


def probe_paths_frame(lab: Lab, function: str) -> pd.DataFrame:
    """The network paths ``function`` needs (to Secrets Manager, to RDS :3306): allowed or blocked, and the rule
    or route that decides (as Reachability Analyzer would explain it)."""
    return paths.function_paths_frame(lab, function)


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
    """Put the private subnets back on the VPC's default network ACL (case 7), delete every probe function, the
    probe roles, the probe secret and the probe group; return what was removed."""
    lam, removed = lab.client("lambda"), troubleshoot_nacl.remove_private_acl(lab)
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
            _revoke_from(ec2, group, probe["GroupId"])
        try:
            ec2.delete_security_group(GroupId=probe["GroupId"])
            removed.append({"kind": "security group", "name": probe["GroupName"]})
        except ClientError as exc:
            if error_code(exc) != "DependencyViolation":
                raise
    return removed
