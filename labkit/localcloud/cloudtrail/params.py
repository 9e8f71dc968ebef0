"""``requestParameters`` as CloudTrail writes them, from the parameters a request sent.

CloudTrail records a call's parameters as its service's API reads them, typed (``"minCount": 1``,
``"force": false``) and named in lower camel case. The query protocols send flat strings
(``InstanceId.1=i-0abc``, ``VpcSecurityGroupIds.member.1=sg-1``); botocore's model of the operation says which
name is a list, a structure, a number or a boolean, and this module rebuilds the structure from it:

- Query services (IAM, STS, RDS): lists are JSON arrays (``"vpcSecurityGroupIds": ["sg-1"]``).
- EC2: lists are EC2's item sets, ``{"items": [...]}``, named as EC2 names them
  (``"instancesSet": {"items": [{"instanceId": "i-0abc"}]}``, ``"filterSet"``, ``"tagSet"``, ``"groupSet"``);
  RunInstances keeps the image and counts inside ``instancesSet`` and never records the user data
  (``"<sensitiveDataRemoved>"``), as AWS's own examples show.
- JSON services: the body as sent, structure members in lower camel case (map keys, such as environment
  variable names, as they are).
"""
from __future__ import annotations

from typing import Any

from labkit.localcloud.core.requests import protocol_of
from labkit.localcloud.core.shapes import MISSING, from_query, input_shape, query_key

SENSITIVE = "<sensitiveDataRemoved>"
# EC2 list member (botocore name) -> (CloudTrail set name, the item's field for a list of plain values, or None)
EC2_SETS = {
    "InstanceIds": ("instancesSet", "instanceId"), "Resources": ("resourcesSet", "resourceId"),
    "Tags": ("tagSet", None), "Filters": ("filterSet", None), "Values": ("valueSet", "value"),
    "SecurityGroupIds": ("groupSet", "groupId"), "TagSpecifications": ("tagSpecificationSet", None),
    "IpPermissions": ("ipPermissions", None), "UserIdGroupPairs": ("groups", None), "IpRanges": ("ipRanges", None),
    "Ipv6Ranges": ("ipv6Ranges", None), "PrefixListIds": ("prefixListIds", None), "VpcIds": ("vpcSet", "vpcId"),
    "SubnetIds": ("subnetSet", "subnetId"), "GroupIds": ("securityGroupIdSet", "groupId"),
    "GroupNames": ("securityGroupSet", "groupName"),
}
RUN_INSTANCES_ITEM = ("imageId", "minCount", "maxCount", "keyName")


def lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def request_parameters(signing_name: str, operation: str, params: Any) -> dict[str, Any] | None:
    """``requestParameters`` of ``operation`` called with ``params`` (flat strings for the query protocols, the
    decoded body for JSON ones); None when it sent none."""
    params = {k: v for k, v in (params or {}).items() if k not in ("Action", "Version")}
    if not params:
        return None
    service, protocol = protocol_of(signing_name)
    shape = input_shape(service, operation)
    if shape is None:  # an operation botocore does not know: the names as sent
        return {lower_camel(k): v for k, v in params.items()}
    if protocol in ("query", "ec2"):
        decoded = from_query(shape, params, "", protocol)
        shown = _shown(shape, decoded, protocol) if decoded is not MISSING else {}
    else:
        shown = _shown(shape, params, protocol)
    if protocol == "ec2" and operation == "RunInstances":
        item = {key: shown.pop(key) for key in RUN_INSTANCES_ITEM if key in shown}
        shown = {"instancesSet": {"items": [item]}, **shown}
    return shown or None


def _shown(shape: Any, value: Any, protocol: str) -> Any:
    """``value`` (botocore member names) with CloudTrail's names: lower camel case; EC2's lists as item sets."""
    kind = getattr(shape, "type_name", None)
    if protocol == "ec2" and getattr(shape, "metadata", {}).get("sensitive"):
        return SENSITIVE  # user data, wherever it is sent (RunInstances, ModifyInstanceAttribute's UserData.Value)
    if kind == "structure" and isinstance(value, dict):
        shown = {}
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None:
                shown[lower_camel(name)] = item
            elif protocol == "ec2" and member.type_name == "list":
                key, field = EC2_SETS.get(name, (lower_camel(query_key(name, member, protocol)) + "Set", None))
                items = [_shown(member.member, i, protocol) for i in item]
                if name == "Tags" and shape.name.startswith("TagSpecification"):
                    shown["tags"] = items  # inside a tag specification, a plain list
                    continue
                if field is None and member.member.type_name != "structure":
                    field = lower_camel(query_key(name, member, protocol))
                shown[key] = {"items": [{field: i} for i in items] if field else items}
            else:
                shown[lower_camel(name)] = _shown(member, item, protocol)
        return shown
    if kind == "list" and isinstance(value, list):
        return [_shown(shape.member, i, protocol) for i in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _shown(shape.value, v, protocol) for k, v in value.items()}
    return value
