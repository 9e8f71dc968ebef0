"""The account's API history as CloudTrail's event history shows it: who called what, when, and the answer.

Read with ``cloudtrail.lookup_events`` on either target (the local cloud keeps the history itself, as
CloudTrail does; :mod:`labkit.localcloud.cloudtrail`). It holds *management* events: creating, changing and
reading resources, a secret read included, by you, by a function's role session
(``assumed-role/<role>/<function>``), by the instance's role session, or by an AWS service on your behalf
(Lambda assuming a function's role). Data events -- a Lambda ``Invoke``, an S3 object written -- are not in
it, on AWS as here. On AWS an event reaches the history within about five minutes of the call.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - types only
    import pandas as pd

    from labkit.session import Lab

COLUMNS = ["time", "who", "event", "service", "resource", "result", "message", "source_ip"]


def lookup(lab: Lab, limit: int = 50, since: dt.datetime | None = None, **attribute: str) -> list[dict]:
    """The newest ``limit`` events, newest first, optionally of one lookup attribute (CloudTrail takes one):
    ``lookup(lab, Username="order-validator")``, ``EventName=``, ``EventSource=``, ``ResourceName=``,
    ``ReadOnly="false"``, ``AccessKeyId=``, ``EventId=``, ``ResourceType=``."""
    if len(attribute) > 1:
        raise ValueError(f"CloudTrail looks up by one attribute at a time, not {sorted(attribute)}")
    params: dict[str, Any] = {}
    if attribute:
        (key, value), = attribute.items()
        params["LookupAttributes"] = [{"AttributeKey": key, "AttributeValue": value}]
    if since is not None:
        params["StartTime"] = since
    events: list[dict] = []
    pages = lab.client("cloudtrail").get_paginator("lookup_events").paginate(
        **params, PaginationConfig={"MaxItems": limit, "PageSize": min(limit, 50)})
    for page in pages:
        events += page["Events"]
    return events[:limit]


def who(identity: dict) -> str:
    """A principal as a student reads it: ``user/lab-admin``, ``assumed-role/<role>/<session>``, or the
    AWS service that acted (``lambda.amazonaws.com``)."""
    kind = identity.get("type")
    if kind == "AWSService":
        return identity.get("invokedBy", "AWS service")
    arn = identity.get("arn", "")
    return arn.split(":", 5)[-1] if arn else kind or "?"


def api_history_frame(lab: Lab, limit: int = 50, since: dt.datetime | None = None, errors_only: bool = False,
                      **attribute: str) -> pd.DataFrame:
    """The event history as a table, newest first (arguments as :func:`lookup`; ``errors_only`` keeps the
    refused calls). Columns: time (UTC, lab time locally), who, event, service, resource, result (``OK`` or
    the error code), message (the error's), source_ip."""
    import pandas as pd

    rows = []
    for event in lookup(lab, limit, since, **attribute):
        record = json.loads(event.get("CloudTrailEvent") or "{}")
        code = record.get("errorCode")
        if errors_only and not code:
            continue
        resources = ", ".join(r.get("ResourceName", "") for r in event.get("Resources", []))
        rows.append({"time": event["EventTime"].astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
                     "who": who(record.get("userIdentity", {})), "event": event["EventName"],
                     "service": event.get("EventSource", "").removesuffix(".amazonaws.com"),
                     "resource": resources, "result": code or "OK", "message": record.get("errorMessage") or "",
                     "source_ip": record.get("sourceIPAddress", "")})
    return pd.DataFrame(rows, columns=COLUMNS)

