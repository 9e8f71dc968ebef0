"""Small helpers every provisioning module uses: tag specifications, lookups by tag, error codes."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from labkit.session import Lab


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def tag_spec(lab: Lab, resource_type: str, name: str) -> list[dict[str, Any]]:
    """EC2 TagSpecifications: the lab tag and a Name."""
    return [{"ResourceType": resource_type, "Tags": [*lab.tags, {"Key": "Name", "Value": name}]}]


def tags_of(lab: Lab, name: str) -> list[dict[str, str]]:
    return [*lab.tags, {"Key": "Name", "Value": name}]


def ec2_find(lab: Lab, kind: str, name: str, extra: list[dict] | None = None) -> dict | None:
    """The one EC2 resource of ``kind`` (Vpcs, Subnets, ...) tagged with this lab and ``name``."""
    ec2 = lab.client("ec2")
    filters = [*lab.tag_filter(), {"Name": "tag:Name", "Values": [name]}, *(extra or [])]
    items = getattr(ec2, f"describe_{_snake(kind)}")(Filters=filters)[kind]
    return items[0] if items else None


def _snake(kind: str) -> str:
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in kind).lstrip("_")
    return out.replace("_i_d", "_id")


def name_tag(item: dict) -> str:
    return next((t["Value"] for t in item.get("Tags", []) if t["Key"] == "Name"), "")
