"""Look-ups of the lab's resources, by tag or by name; they create nothing and import no step module.

Each returns None (or an empty collection) only when AWS answers that the resource is not there; a refusal
(AccessDenied) or any other error propagates, so "may not look" is never read as "absent".
"""
from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from labkit import names
from labkit.errors import StepError, error_code, if_exists
from labkit.session import Lab
from labkit.tagging import ec2_find

LIVE_STATES = ["pending", "running", "stopping", "stopped"]


def vpc_ids(lab: Lab) -> dict[str, Any]:
    """The step-1 ids, found by tag. Raises StepError when step 1 has not run."""
    vpc = ec2_find(lab, "Vpcs", names.lab_resource(lab, "vpc"))
    if vpc is None:
        raise StepError(1, f"no VPC tagged lab={lab.name}", names.run_first(1))
    subnets = {key: ec2_find(lab, "Subnets", names.lab_resource(lab, key)) for key in names.SUBNET_KEYS}
    return {"vpc_id": vpc["VpcId"], "subnets": {k: s["SubnetId"] for k, s in subnets.items() if s}}


def subnet_ids(lab: Lab, public: bool) -> set[str]:
    """The ids of the lab's public (or private) subnets."""
    subnets = lab.client("ec2").describe_subnets(Filters=lab.tag_filter())["Subnets"]
    return {s["SubnetId"] for s in subnets if bool(s.get("MapPublicIpOnLaunch")) == public}


def security_group_ids(lab: Lab) -> dict[str, str]:
    """The lab's security groups by role (``ec2``, ``lambda``, ``rds``, ``endpoints``)."""
    found = lab.client("ec2").describe_security_groups(Filters=lab.tag_filter())["SecurityGroups"]
    by_name = {g["GroupName"]: g["GroupId"] for g in found}
    return {role: by_name[name] for role, name in names.SG_NAMES.items() if name in by_name}


def require_security_group(lab: Lab, role: str, step: int) -> str:
    """The id of the lab's ``role`` security group; a StepError pointing at step 3 when it is missing."""
    groups = security_group_ids(lab)
    if role not in groups:
        label = {"ec2": "EC2", "lambda": "Lambda", "rds": "RDS", "endpoints": "VPC endpoint"}[role]
        raise StepError(step, f"the {label} security group does not exist", names.run_first(3))
    return groups[role]


def describe_db_instance(lab: Lab) -> dict | None:
    """The lab's RDS instance, or None."""
    return if_exists(lambda: lab.client("rds").describe_db_instances(
        DBInstanceIdentifier=names.db_instance_id(lab))["DBInstances"][0], "reading the RDS instance")


def describe_instance(lab: Lab) -> dict | None:
    """The lab's app instance (not terminated), or None."""
    reservations = lab.client("ec2").describe_instances(Filters=[
        *lab.tag_filter(), {"Name": "tag:Name", "Values": [names.instance_name(lab)]},
        {"Name": "instance-state-name", "Values": LIVE_STATES}])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    return instances[0] if instances else None


def secret_pending_deletion(lab: Lab) -> bool:
    """True when the secret exists but is scheduled for deletion (after a teardown with a recovery window)."""
    described = if_exists(lambda: lab.client("secretsmanager").describe_secret(SecretId=names.SECRET_NAME),
                          f"reading the secret {names.SECRET_NAME}")
    return bool((described or {}).get("DeletedDate"))


def read_secret(lab: Lab) -> dict | None:
    """The secret's JSON (for labkit's own use; never display it). None when it does not exist, or is
    scheduled for deletion (GetSecretValue then answers InvalidRequestException)."""
    try:
        text = if_exists(lambda: lab.client("secretsmanager").get_secret_value(
            SecretId=names.SECRET_NAME)["SecretString"], f"reading the secret {names.SECRET_NAME}")
    except ClientError as exc:
        if error_code(exc) == "InvalidRequestException" and secret_pending_deletion(lab):
            return None
        raise
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def function_configuration(lab: Lab, name: str) -> dict | None:
    """A Lambda function's configuration, or None."""
    return if_exists(lambda: lab.client("lambda").get_function(FunctionName=name)["Configuration"],
                     f"reading the function {name}")


def engine_version(lab: Lab) -> str:
    """RDS's default minor version of the pinned major (``names.DB_PARAMETER_GROUP_FAMILY``) in the lab's region."""
    versions = lab.client("rds").describe_db_engine_versions(
        Engine=names.DB_ENGINE, DBParameterGroupFamily=names.DB_PARAMETER_GROUP_FAMILY,
        DefaultOnly=True)["DBEngineVersions"]
    if not versions:
        raise StepError(4, f"RDS offers no {names.DB_PARAMETER_GROUP_FAMILY} version in {lab.region}",
                        "use another region (the `region` parameter, or --region)")
    return versions[0]["EngineVersion"]
