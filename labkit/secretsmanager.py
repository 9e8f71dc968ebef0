"""Step 9: the secret ``order-db-secret`` in AWS's "Credentials for RDS database" shape.

The master password is generated in step 4 and goes straight into this secret, so it never appears
in a notebook, a command line or a log. Step 9 completes the secret with the endpoint the Lambdas need.
"""
from __future__ import annotations

import json
import secrets as pysecrets
import string

import pandas as pd

from labkit import lookups
from labkit.errors import StepError
from labkit.lookups import describe_db_instance, read_secret
from labkit.names import SECRET_NAME, run_first
from labkit.session import Lab
from labkit.tagging import claim

__all__ = ["KEYS", "create_db_secret", "generate_password", "pending_deletion", "read_secret", "recover_secret",
           "secret_frame", "store_master_credentials", "write_secret"]

KEYS = ("username", "password", "engine", "host", "port", "dbname", "dbInstanceIdentifier")
PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_.~^"  # RDS forbids / " @ and spaces


def generate_password(length: int = 32) -> str:
    return "".join(pysecrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def pending_deletion(lab: Lab) -> bool:
    """True when the secret exists but is scheduled for deletion (after a teardown with a recovery window)."""
    return lookups.secret_pending_deletion(lab)


def recover_secret(lab: Lab, step: int) -> bool:
    """Cancel the scheduled deletion of the lab's secret, so its password is used again; True if it did."""
    if not pending_deletion(lab) or not claim(lab, step, "secret", SECRET_NAME):
        return False
    lab.client("secretsmanager").restore_secret(SecretId=SECRET_NAME)
    return True


def write_secret(lab: Lab, value: dict, step: int) -> str:
    """Create the secret or store a new version when ``value`` differs; return its ARN."""
    sm = lab.client("secretsmanager")
    body = json.dumps(value, sort_keys=True)
    if not claim(lab, step, "secret", SECRET_NAME):
        return sm.create_secret(Name=SECRET_NAME, SecretString=body, Tags=lab.tags,
                                Description=f"Orders Lab ({lab.name}): RDS credentials for the order database")["ARN"]
    described = sm.describe_secret(SecretId=SECRET_NAME)
    if described.get("DeletedDate"):
        sm.restore_secret(SecretId=SECRET_NAME)
    if read_secret(lab) != value:
        sm.put_secret_value(SecretId=SECRET_NAME, SecretString=body)
    return described["ARN"]


def store_master_credentials(lab: Lab, username: str, password: str) -> str:
    current = read_secret(lab) or {}
    return write_secret(lab, {**current, "username": username, "password": password, "engine": "mysql"}, step=4)


def create_db_secret(lab: Lab) -> str:
    """Step 9: username, password, engine, host, port, dbname (and the instance id) for the Lambdas."""
    current = read_secret(lab)
    if not current or not current.get("password"):
        raise StepError(9, "the secret has no master password yet", run_first(4))
    db = describe_db_instance(lab)
    if db is None:
        raise StepError(9, "the database instance does not exist", run_first(4))
    value = {**current, "engine": "mysql", "host": db["Endpoint"]["Address"], "port": db["Endpoint"]["Port"],
             "dbname": db.get("DBName", "ordersdb"), "dbInstanceIdentifier": db["DBInstanceIdentifier"],
             "username": db["MasterUsername"]}
    value.pop("db", None)
    return write_secret(lab, value, step=9)


def secret_frame(lab: Lab) -> pd.DataFrame:
    """The secret's keys with non-secret values shown and the password masked."""
    value = read_secret(lab)
    if value is None:
        return pd.DataFrame(columns=["key", "value"])
    rows = [{"key": k, "value": "********" if k == "password" else str(value.get(k, "(missing)"))} for k in KEYS]
    return pd.DataFrame(rows)
