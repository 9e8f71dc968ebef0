"""A request's input as botocore's model names and types it, whatever protocol carried it.

The query protocols send flat strings (``InstanceId.1=i-0abc``, ``Tags.member.1.Key=lab``); rest-json splits the
input between the URI, the query string, headers and a JSON body; json sends the structure as its body. The model of
the operation says where each member travels and which is a list, a structure, a number or a boolean:
:func:`request_input` rebuilds the structure from it, with the model's member names. Two readers share it: the
validation of parameters (:mod:`.validation`) and CloudTrail's ``requestParameters``
(:mod:`labkit.localcloud.cloudtrail.params`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labkit.localcloud.core.models import service_model
from labkit.localcloud.core.requests import HeaderMap

MISSING: Any = object()  # no value at this place of the request (a member that was not sent)


def input_shape(service: str, operation: str) -> Any:
    """botocore's input shape of ``operation`` (None for an operation or service botocore does not know)."""
    try:
        return service_model(service).operation_model(operation).input_shape
    except Exception:  # unknown service or operation
        return None


def query_key(name: str, member: Any, protocol: str) -> str:
    """The name a query request gives the member ``name`` (EC2 capitalises its ``locationName``)."""
    if protocol == "ec2":
        location = member.serialization.get("name")
        return member.serialization.get("queryName") or (location[:1].upper() + location[1:] if location else name)
    return str(member.serialization.get("name", name))


def from_query(shape: Any, flat: Mapping[str, str], prefix: str, protocol: str) -> Any:
    """The value at ``prefix`` of a flat query request, as ``shape`` types it (:data:`MISSING` if not sent)."""
    kind = shape.type_name
    if prefix and prefix not in flat and not any(k.startswith(prefix + ".") for k in flat):
        return MISSING
    if kind == "structure":
        found = {}
        for name, member in shape.members.items():
            key = query_key(name, member, protocol)
            value = from_query(member, flat, f"{prefix}.{key}" if prefix else key, protocol)
            if value is not MISSING:
                found[name] = value
        return found
    if kind == "list":
        flattened = protocol == "ec2" or shape.serialization.get("flattened")
        base = prefix if flattened else f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        items: list[Any] = []
        while True:
            item = from_query(shape.member, flat, f"{base}.{len(items) + 1}", protocol)
            if item is MISSING:
                return items
            items.append(item)
    if kind == "map":
        entries, number = {}, 1
        while f"{prefix}.entry.{number}.key" in flat:
            entries[flat[f"{prefix}.entry.{number}.key"]] = flat.get(f"{prefix}.entry.{number}.value")
            number += 1
        return entries
    return typed(kind, flat.get(prefix, ""))


def typed(kind: str, text: Any) -> Any:
    """A scalar sent as text, as the model types it (left as sent when it does not read as that type)."""
    if not isinstance(text, str):  # already typed (a JSON body), or a hidden secret
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


def request_input(service: str, operation: str, protocol: str, params: Mapping[str, Any],
                  headers: HeaderMap) -> dict[str, Any] | None:
    """The input of a request as the model names it. ``params`` is what :func:`.requests.classify` gathered (the
    flat query for query/ec2, the body for json, URI and query-string values plus the body's members for
    rest-json). None for a protocol whose input is not rebuilt (rest-xml: S3 names its members in its paths and
    XML bodies) or an unknown operation. A rest-json payload member (Lambda Invoke's ``Payload``) is left out: it is
    the raw body, never a parameter."""
    shape = input_shape(service, operation)
    if shape is None:
        return None
    if protocol in ("query", "ec2"):
        found = from_query(shape, params, "", protocol)
        return found if isinstance(found, dict) else {}
    if protocol == "json":
        return dict(params)
    if protocol != "rest-json":
        return None
    payload = shape.serialization.get("payload")
    found = {}
    for name, member in shape.members.items():
        if name == payload:
            continue
        location, wire = member.serialization.get("location"), member.serialization.get("name", name)
        if location == "header":
            value = headers.get(wire, MISSING)
        elif location in ("uri", "querystring"):
            value = params.get(wire, MISSING)
        else:
            value = params.get(name, MISSING)
        if value is not MISSING:
            found[name] = typed(member.type_name, value) if location else value
    return found
