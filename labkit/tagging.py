"""Small helpers every provisioning module uses: tag specifications, lookups by tag, error codes."""
from __future__ import annotations

from typing import Any

from botocore import xform_name

from labkit.errors import StepError, error_code, if_exists
from labkit.session import Lab

__all__ = ["claim", "ec2_find", "error_code", "name_tag", "owned", "owner_of", "tag_spec"]


def tag_spec(lab: Lab, resource_type: str, name: str) -> list[dict[str, Any]]:
    """EC2 TagSpecifications: the lab tag and a Name."""
    return [{"ResourceType": resource_type, "Tags": [*lab.tags, {"Key": "Name", "Value": name}]}]


def ec2_find(lab: Lab, kind: str, name: str, extra: list[dict] | None = None) -> dict | None:
    """The one EC2 resource of ``kind`` (Vpcs, Subnets, ...) tagged with this lab and ``name``."""
    ec2 = lab.client("ec2")
    filters = [*lab.tag_filter(), {"Name": "tag:Name", "Values": [name]}, *(extra or [])]
    items = getattr(ec2, xform_name(f"Describe{kind}"))(Filters=filters)[kind]
    return items[0] if items else None


def _tag_dict(pairs: list[dict] | dict | None) -> dict:
    if isinstance(pairs, dict):
        return pairs
    return {p.get("Key"): p.get("Value") for p in pairs or []}


def owner_of(lab: Lab, kind: str, ident: str) -> tuple[bool, str | None]:
    """Whether the account-global resource ``ident`` exists, and the lab its ``lab`` tag names."""
    lookups = {
        "function": lambda: lab.client("lambda").list_tags(
            Resource=lab.client("lambda").get_function(FunctionName=ident)["Configuration"]["FunctionArn"])["Tags"],
        "role": lambda: lab.client("iam").list_role_tags(RoleName=ident)["Tags"],
        "instance profile": lambda: lab.client("iam").get_instance_profile(
            InstanceProfileName=ident)["InstanceProfile"].get("Tags", []),
        "secret": lambda: lab.client("secretsmanager").describe_secret(SecretId=ident).get("Tags", []),
        "db subnet group": lambda: lab.client("rds").list_tags_for_resource(ResourceName=lab.client(
            "rds").describe_db_subnet_groups(DBSubnetGroupName=ident)["DBSubnetGroups"][0]["DBSubnetGroupArn"]
        )["TagList"],
        "eventbridge rule": lambda: lab.client("events").list_tags_for_resource(
            ResourceARN=lab.client("events").describe_rule(Name=ident)["Arn"])["Tags"],
    }
    tags = if_exists(lookups[kind], f"reading the tags of the {kind} {ident}")
    return (False, None) if tags is None else (True, _tag_dict(tags).get("lab"))


def owned(lab: Lab, kind: str, ident: str) -> bool:
    """True when the resource exists and carries this lab's tag."""
    exists, owner = owner_of(lab, kind, ident)
    return exists and owner == lab.name


def claim(lab: Lab, step: int | str, kind: str, ident: str) -> bool:
    """Before creating or changing an account-global name (the tutorial's names are fixed): True when it
    exists and is this lab's, False when it does not exist; a StepError when another lab owns it."""
    exists, owner = owner_of(lab, kind, ident)
    if exists and owner != lab.name:
        raise StepError(step, f"the {kind} {ident} already exists in this account and belongs to "
                              f"{'lab ' + repr(owner) if owner else 'no lab (it was made by hand)'}",
                        "one lab per account and region uses the tutorial's names: tear the other lab down "
                        f"(labkit down --lab {owner}) or use another region" if owner else
                        f"delete or rename that {kind}, or use another region")
    return exists


def name_tag(item: dict) -> str:
    return next((t["Value"] for t in item.get("Tags", []) if t["Key"] == "Name"), "")
