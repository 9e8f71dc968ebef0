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

from labkit.localcloud.core.models import service_model
from labkit.localcloud.core.requests import protocol_of

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
_MISSING = object()


def lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def request_parameters(signing_name: str, operation: str, params: Any) -> dict | None:
    """``requestParameters`` of ``operation`` called with ``params`` (flat strings for the query protocols, the
    decoded body for JSON ones); None when it sent none."""
    params = {k: v for k, v in (params or {}).items() if k not in ("Action", "Version")}
    if not params:
        return None
    service, protocol = protocol_of(signing_name)
    shape = _input_shape(service, operation)
    if shape is None:  # an operation botocore does not know: the names as sent
        return {lower_camel(k): v for k, v in params.items()}
    if protocol in ("query", "ec2"):
        decoded = _from_query(shape, params, "", protocol)
        shown = _shown(shape, decoded, protocol) if decoded is not _MISSING else {}
    else:
        shown = _shown(shape, params, protocol)
    if protocol == "ec2" and operation == "RunInstances":
        item = {key: shown.pop(key) for key in RUN_INSTANCES_ITEM if key in shown}
        shown = {"instancesSet": {"items": [item]}, **shown}
    return shown or None


def _input_shape(service: str, operation: str) -> Any:
    try:
        return service_model(service).operation_model(operation).input_shape
    except Exception:  # unknown service or operation
        return None


def _query_key(name: str, member: Any, protocol: str) -> str:
    if protocol == "ec2":
        location = member.serialization.get("name")
        return member.serialization.get("queryName") or (location[:1].upper() + location[1:] if location else name)
    return member.serialization.get("name", name)


def _from_query(shape: Any, flat: dict[str, str], prefix: str, protocol: str) -> Any:
    """The value at ``prefix`` of a flat query request, as botocore's ``shape`` types it."""
    kind = shape.type_name
    if prefix and prefix not in flat and not any(k.startswith(prefix + ".") for k in flat):
        return _MISSING
    if kind == "structure":
        found = {}
        for name, member in shape.members.items():
            key = _query_key(name, member, protocol)
            value = _from_query(member, flat, f"{prefix}.{key}" if prefix else key, protocol)
            if value is not _MISSING:
                found[name] = value
        return found
    if kind == "list":
        flattened = protocol == "ec2" or shape.serialization.get("flattened")
        base = prefix if flattened else f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        items = []
        while True:
            item = _from_query(shape.member, flat, f"{base}.{len(items) + 1}", protocol)
            if item is _MISSING:
                return items
            items.append(item)
    if kind == "map":
        entries, number = {}, 1
        while f"{prefix}.entry.{number}.key" in flat:
            entries[flat[f"{prefix}.entry.{number}.key"]] = flat.get(f"{prefix}.entry.{number}.value")
            number += 1
        return entries
    return _typed(kind, flat.get(prefix, ""))


def _typed(kind: str, text: Any) -> Any:
    if not isinstance(text, str):  # a hidden secret
        return text
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            return text
    if kind == "boolean":
        return text.lower() == "true"
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            return text
    return text


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
                key, field = EC2_SETS.get(name, (lower_camel(_query_key(name, member, protocol)) + "Set", None))
                items = [_shown(member.member, i, protocol) for i in item]
                if name == "Tags" and shape.name.startswith("TagSpecification"):
                    shown["tags"] = items  # inside a tag specification, a plain list
                    continue
                if field is None and member.member.type_name != "structure":
                    field = lower_camel(_query_key(name, member, protocol))
                shown[key] = {"items": [{field: i} for i in items] if field else items}
            else:
                shown[lower_camel(name)] = _shown(member, item, protocol)
        return shown
    if kind == "list" and isinstance(value, list):
        return [_shown(shape.member, i, protocol) for i in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _shown(shape.value, v, protocol) for k, v in value.items()}
    return value
