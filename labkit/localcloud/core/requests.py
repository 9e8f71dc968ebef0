"""What an AWS API request asks for: the service, the protocol, the operation, its parameters and the IAM action.

The one classification of a request, shared by every request hook (IAM, the network model, the event history):
the operation is found the way each protocol names it: ``X-Amz-Target`` (json), ``Action=`` (query, ec2),
the path (rpc-v2-cbor), or the HTTP method and URI template of botocore's service model (rest-json,
rest-xml). The resource IAM authorizes a request on is IAM's business (:mod:`labkit.localcloud.iam.resources`).
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, TypeAlias
from urllib.parse import parse_qs, unquote

from botocore.exceptions import UnknownServiceError
from werkzeug.datastructures import Headers

from labkit.localcloud.core.models import service_model

HeaderMap: TypeAlias = "Headers | Mapping[str, str]"
"""A request's headers: werkzeug's Headers (names in any case), or a mapping with the names as AWS spells them."""

# signing name -> botocore service name, and the IAM prefix where it differs from the signing name
SERVICES = {"monitoring": "cloudwatch", "email": "ses", "states": "stepfunctions", "execute-api": "apigateway"}
IAM_PREFIX = {"monitoring": "cloudwatch"}
# operation -> IAM action where the two differ
ACTION_NAMES = {
    "lambda": {"Invoke": "InvokeFunction", "InvokeWithResponseStream": "InvokeFunction",
               "GetFunctionUrlConfig": "GetFunctionUrlConfig"},
    "s3": {"HeadObject": "GetObject", "HeadBucket": "ListBucket", "ListObjects": "ListBucket",
           "ListObjectsV2": "ListBucket", "ListObjectVersions": "ListBucketVersions", "ListBuckets": "ListAllMyBuckets",
           "CopyObject": "PutObject", "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
           "CompleteMultipartUpload": "PutObject", "AbortMultipartUpload": "AbortMultipartUpload",
           "DeleteObjects": "DeleteObject", "PutBucketEncryption": "PutEncryptionConfiguration",
           "GetBucketEncryption": "GetEncryptionConfiguration", "DeleteBucketEncryption": "PutEncryptionConfiguration",
           "PutPublicAccessBlock": "PutBucketPublicAccessBlock", "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
           "DeletePublicAccessBlock": "PutBucketPublicAccessBlock", "GetObjectAttributes": "GetObjectAttributes",
           "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
           "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration", "DeleteBucketTagging": "PutBucketTagging",
           "DeleteBucketLifecycle": "PutLifecycleConfiguration", "GetBucketAcl": "GetBucketAcl",
           "PutBucketOwnershipControls": "PutBucketOwnershipControls"},
}


@dataclass
class Classified:
    """One request as IAM (and every request hook) sees it: who serves it, in which protocol, what it asks."""

    signing_name: str
    service: str  # botocore name
    protocol: str
    operation: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def action(self) -> str:
        prefix = IAM_PREFIX.get(self.signing_name, self.signing_name)
        return f"{prefix}:{ACTION_NAMES.get(self.service, {}).get(self.operation, self.operation)}"


def protocol_of(signing_name: str) -> tuple[str, str]:
    """(botocore service name, protocol) for a SigV4 signing name."""
    service = SERVICES.get(signing_name, signing_name)
    try:
        model = service_model(service)
    except UnknownServiceError:  # a signing name botocore has no model for: JSON, as most newer services speak
        return service, "json"
    return service, model.metadata.get("protocol", "json")


def _required(operation: Any, location: str) -> tuple[str, ...]:
    shape = operation.input_shape
    if shape is None:
        return ()
    required = set(shape.required_members)
    return tuple(member.serialization.get("name", name) for name, member in shape.members.items()
                 if name in required and member.serialization.get("location") == location)


@cache
def _routes(service: str) -> list[tuple[str, re.Pattern[str], tuple[str, ...], tuple[str, ...], int, str]]:
    """(method, path regex, required query keys, required headers, specificity, operation) from the model."""
    routes: list[tuple[str, re.Pattern[str], tuple[str, ...], tuple[str, ...], int, str]] = []
    try:
        names = service_model(service).operation_names
    except UnknownServiceError:  # a signing name botocore has no model for: no REST routes to match
        return routes
    for name in names:
        operation = service_model(service).operation_model(name)
        http = operation.http
        # S3's newer models put the bucket in the host (requestUri "/{Key+}"); authPath is the path-style layout,
        # the one requests to the cloud's own address use
        path, _, query = http.get("requestUri", "/").partition("?")
        path = http.get("authPath") or path
        keys = tuple(part.split("=")[0] for part in query.split("&") if part) + _required(operation, "querystring")
        needed_headers = _required(operation, "header")
        regex = ""
        for piece in re.split(r"(\{[^}]+\})", path):
            if piece.startswith("{"):
                regex += f"(?P<{re.sub(r'[^A-Za-z0-9_]', '', piece)}>.+)" if piece.endswith("+}") else \
                    f"(?P<{re.sub(r'[^A-Za-z0-9_]', '', piece)}>[^/]+)"
            else:
                regex += re.escape(piece)
        literal = len(re.sub(r"\{[^}]+\}", "", path)) + 10 * (len(keys) + len(needed_headers))
        routes.append((http.get("method", "POST"), re.compile(f"^{regex}/?$"), keys, needed_headers, literal, name))
    return routes


def _rest_operation(service: str, method: str, path: str, query: Mapping[str, Any],
                    headers: HeaderMap) -> tuple[str, dict[str, str]]:
    present = frozenset(h for h in _header_names(service) if h in headers)
    return _match_rest(service, method, path, frozenset(query), present)


@cache
def _header_names(service: str) -> tuple[str, ...]:
    return tuple({h for route in _routes(service) for h in route[3]})


@lru_cache(maxsize=4096)
def _match_rest(service: str, method: str, path: str, query: frozenset[str],
                headers: frozenset[str]) -> tuple[str, dict[str, str]]:
    best: tuple[int, str, dict[str, str]] | None = None
    for verb, regex, keys, needed_headers, literal, name in _routes(service):
        if verb != method or any(k not in query for k in keys) or any(h not in headers for h in needed_headers):
            continue
        found = regex.match(path)
        if found and (best is None or literal > best[0]):
            best = (literal, name, {k: unquote(v) for k, v in found.groupdict().items()})
    return (best[1], best[2]) if best else ("", {})


# a presigned URL's signature and session token (SigV4, SigV2): no parameters of the call (CloudTrail records neither)
NOT_PARAMETERS = frozenset({"X-Amz-Signature", "X-Amz-Security-Token", "Signature", "x-amz-security-token"})


def classify(signing_name: str, method: str, path: str, query_string: str, headers: HeaderMap,
             body: bytes | None) -> Classified:
    """Name the operation and gather its parameters (top-level only; enough to find the resource)."""
    service, protocol = protocol_of(signing_name)
    query = {k: v[0] for k, v in parse_qs(query_string, keep_blank_values=True).items() if k not in NOT_PARAMETERS}
    target = headers.get("X-Amz-Target")
    if target:
        params = _json(body)
        return Classified(signing_name, service, "json", target.rsplit(".", 1)[-1], params)
    if "rpc-v2-cbor" in (headers.get("Smithy-Protocol") or ""):
        return Classified(signing_name, service, "smithy-rpc-v2-cbor", path.rstrip("/").rsplit("/", 1)[-1], {})
    if protocol in ("query", "ec2") or "Action" in query:
        form = {}
        if body and "x-www-form-urlencoded" in (headers.get("Content-Type") or ""):
            form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace"), keep_blank_values=True).items()}
        params = {**query, **form}
        return Classified(signing_name, service, protocol if protocol in ("query", "ec2") else "query",
                          params.get("Action", ""), params)
    operation, path_params = _rest_operation(service, method, path, query, headers)
    params = {**query, **path_params}
    if protocol == "rest-json" and body and not _raw_payload(service, operation):
        params.update({k: v for k, v in _json(body).items() if k not in params})
    return Classified(signing_name, service, protocol, operation, params)


@cache
def _raw_payload(service: str, operation: str) -> bool:
    """Whether the operation's body is a blob member itself (Lambda Invoke's ``Payload``): the body is then no
    parameters, whatever JSON it holds (an order's ``Qualifier`` key is not Invoke's ``Qualifier``)."""
    try:
        shape = service_model(service).operation_model(operation).input_shape
    except Exception:  # an operation the model does not name (classify found none): no payload member known
        return False
    payload = shape.serialization.get("payload") if shape is not None else None
    return payload is not None and shape.members[payload].type_name in ("blob", "string")


def guess_protocol(path: str, query_string: str, headers: HeaderMap) -> str:
    """For a request with no signature (so no service named): the protocol its shape shows."""
    if headers.get("X-Amz-Target"):
        return "json"
    if path.startswith("/2015-03-31/"):
        return "rest-json"
    if "Action=" in query_string or "x-www-form-urlencoded" in (headers.get("Content-Type") or ""):
        return "query"
    return "rest-xml"


def _json(body: bytes | None) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
