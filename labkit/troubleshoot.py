"""Reproduce the tutorial's "Troubleshooting Handled" cases with probe copies of order-validator.

Probes are separate functions and a separate secret (named ``<lab>-probe-...``), so the real system is
never broken; ``cleanup`` removes them (teardown does too).
"""
from __future__ import annotations

import json

import pandas as pd
from botocore.exceptions import ClientError

from labkit import functions, iam, secrets, troubleshoot_iam
from labkit.errors import if_exists
from labkit.names import PROBE_CASES, log_group, probe_name
from labkit.session import Lab
from labkit.tagging import error_code

__all__ = ["VALID_ORDER", "cleanup", "deploy_probe", "fix_secret", "probe_name", "secret_keys_frame", "try_order",
           "unreachable_secrets_endpoint", "write_broken_secret"]

VALID_ORDER = {"customer_name": "Troubleshooting", "product": "Probe", "quantity": 1, "amount": "1.00"}


def deploy_probe(lab: Lab, case: str, with_layer: bool = True, timeout: int = 30,
                 env: dict[str, str] | None = None, role: str = iam.VALIDATOR_ROLE, in_vpc: bool = True) -> str:
    """A copy of order-validator for one case: the same code and role, with the case's mistake."""
    name = probe_name(lab, case)
    functions.ensure_function(lab, name, "order_validator", role,
                              {"DB_SECRET_NAME": iam.SECRET_NAME, **(env or {})}, timeout=timeout, memory=256,
                              layers=[functions.ensure_layer(lab)] if with_layer else [],
                              vpc=functions.vpc_config(lab) if in_vpc else None)
    return name


def try_order(lab: Lab, function: str) -> pd.DataFrame:
    """Invoke ``function`` with a valid order and show what came back, error or not."""
    result = functions.invoke(lab, function, VALID_ORDER)
    payload = result.payload if isinstance(result.payload, dict) else {"value": result.payload}
    return pd.DataFrame([{"function": function, "FunctionError": result.function_error or "-",
                          "errorType": payload.get("errorType", "-"),
                          "answer": payload.get("errorMessage") or json.dumps(payload)}])


def write_broken_secret(lab: Lab) -> str:
    """A secret in the wrong shape (``user``/``pass``, no host): the tutorial's "secret key error"."""
    name = probe_name(lab, "secret")
    real = secrets.read_secret(lab) or {}
    broken = {"user": real.get("username", "admin"), "pass": real.get("password", ""), "database": "ordersdb"}
    _put_secret(lab, name, broken)
    return name


def fix_secret(lab: Lab) -> str:
    """Store the RDS-credentials shape (username, password, host, port, dbname) in the probe secret."""
    name = probe_name(lab, "secret")
    _put_secret(lab, name, secrets.read_secret(lab) or {})
    return name


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


def unreachable_secrets_endpoint(lab: Lab) -> dict[str, str]:
    """Point the probe's Secrets Manager client at an address with no answer, as without a VPC endpoint."""
    return {"AWS_ENDPOINT_URL_SECRETS_MANAGER": lab.target.unreachable_endpoint()}


def cleanup(lab: Lab) -> pd.DataFrame:
    """Delete every probe function, the probe roles and the probe secret; return what was removed."""
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
    return pd.DataFrame(removed, columns=["kind", "name"])
