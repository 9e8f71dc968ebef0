"""One recorded API request as CloudTrail writes it: the event record and the LookupEvents ``Event``.

What AWS records and how (CloudTrail user guide, "record contents"): ``userIdentity`` (an ``IAMUser``, an
``AssumedRole`` session with its ``sessionIssuer``, or an ``AWSService``), ``eventSource``
(``<service>.amazonaws.com``), ``eventName`` (the API operation; Lambda's carry their API version,
``CreateFunction20150331``), ``readOnly``, ``errorCode``/``errorMessage``, ``requestParameters`` with secrets
hidden (:mod:`labkit.redact`), ``resources``. Only management events: data events (S3 object operations,
Lambda ``Invoke``, CloudWatch Logs' log events) are not in CloudTrail's event history, so not here either.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labkit.localcloud.cloudtrail.params import request_parameters
from labkit.redact import plain, redact

ACCOUNT = "123456789012"
# ids look random, as AWS's do, but are made only when someone looks: a random base per daemon, xor the number
EVENT_IDS, REQUEST_IDS = uuid.uuid4().int, uuid.uuid4().int
EVENT_VERSION = "1.09"
READ_ONLY = ("Describe", "Get", "List", "Head", "Lookup", "Search", "BatchGet", "Select", "Check", "Filter",
             "Simulate", "Assume")  # STS's AssumeRole* are read-only events too
# Data events (not management events): event history does not hold them
DATA_EVENTS = {
    "lambda": {"Invoke", "InvokeAsync", "InvokeWithResponseStream"},
    "s3": {"GetObject", "PutObject", "DeleteObject", "DeleteObjects", "HeadObject", "CopyObject", "ListObjects",
           "ListObjectsV2", "ListObjectVersions", "CreateMultipartUpload", "UploadPart", "UploadPartCopy",
           "CompleteMultipartUpload", "AbortMultipartUpload", "ListParts", "GetObjectAcl", "PutObjectAcl",
           "GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging", "GetObjectAttributes", "RestoreObject",
           "SelectObjectContent", "GetObjectRetention", "PutObjectRetention", "GetObjectLegalHold",
           "PutObjectLegalHold"},
    "logs": {"PutLogEvents", "GetLogEvents", "FilterLogEvents", "StartLiveTail"},
}
# Lambda's event names carry the version of its API the operation belongs to
LAMBDA_VERSIONS = {
    "CreateFunction": "20150331", "DeleteFunction": "20150331", "ListFunctions": "20150331",
    "PublishVersion": "20150331", "CreateEventSourceMapping": "20150331", "ListEventSourceMappings": "20150331",
    "UpdateFunctionCode": "20150331v2", "UpdateFunctionConfiguration": "20150331v2", "GetFunction": "20150331v2",
    "GetFunctionConfiguration": "20150331v2", "AddPermission": "20150331v2", "RemovePermission": "20150331v2",
    "GetPolicy": "20150331v2", "PublishLayerVersion": "20181031", "GetLayerVersion": "20181031",
    "ListLayerVersions": "20181031", "ListLayers": "20181031", "DeleteLayerVersion": "20181031",
    "TagResource": "20170331v2", "UntagResource": "20170331v2", "ListTags": "20170331",
    "PutFunctionConcurrency": "20171031", "DeleteFunctionConcurrency": "20171031",
}
# request parameter -> CloudTrail resource type (for the Resources list and ResourceName/ResourceType lookups)
RESOURCE_TYPES = {
    "VpcId": "AWS::EC2::VPC", "SubnetId": "AWS::EC2::Subnet", "GroupId": "AWS::EC2::SecurityGroup",
    "InstanceId": "AWS::EC2::Instance", "RouteTableId": "AWS::EC2::RouteTable",
    "InternetGatewayId": "AWS::EC2::InternetGateway", "VpcEndpointId": "AWS::EC2::VPCEndpoint",
    "DBInstanceIdentifier": "AWS::RDS::DBInstance", "DBSubnetGroupName": "AWS::RDS::DBSubnetGroup",
    "RoleName": "AWS::IAM::Role", "PolicyArn": "AWS::IAM::Policy", "InstanceProfileName": "AWS::IAM::InstanceProfile",
    "UserName": "AWS::IAM::User", "SecretId": "AWS::SecretsManager::Secret", "Name@secretsmanager":
    "AWS::SecretsManager::Secret", "FunctionName": "AWS::Lambda::Function", "LayerName": "AWS::Lambda::LayerVersion",
    "Bucket": "AWS::S3::Bucket", "Rule": "AWS::Events::Rule", "Name@events": "AWS::Events::Rule",
    "RoleArn": "AWS::IAM::Role", "logGroupName": "AWS::Logs::LogGroup",
}


def event_name(service: str, operation: str) -> str:
    if service == "lambda" and operation in LAMBDA_VERSIONS:
        return operation + LAMBDA_VERSIONS[operation]
    return operation


def is_management(service: str, operation: str) -> bool:
    return operation not in DATA_EVENTS.get(service, ())


def read_only(operation: str) -> bool:
    return operation.startswith(READ_ONLY)


@dataclass
class Recorded:
    """What the request path keeps of one API request (rendering waits until someone looks)."""

    number: int  # the event's place in the history; its ids derive from it
    stamp: float  # lab time, seconds since the epoch
    principal: str
    access_key_id: str
    service: str  # the signing name
    operation: str
    region: str
    params: Any
    status: int
    source_ip: str
    user_agent: str
    error_body: bytes | None = None
    error_type: str | None = None
    identity: dict[str, Any] | None = None  # for events a service itself records (AssumeRole by lambda.amazonaws.com)
    session_created: float | None = None  # a role session's: when its AssumeRole was answered
    cached: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def event_id(self) -> str:
        return str(uuid.UUID(int=EVENT_IDS ^ self.number))

    @property
    def request_id(self) -> str:
        return str(uuid.UUID(int=REQUEST_IDS ^ self.number))

    @property
    def name(self) -> str:
        return event_name(self.service, self.operation)

    @property
    def source(self) -> str:
        return f"{self.service}.amazonaws.com"

    @property
    def read_only(self) -> bool:
        return read_only(self.operation)

    def error(self) -> tuple[str | None, str | None]:
        """(errorCode, errorMessage) of a refused request, from the error body the caller got."""
        if self.status < 400:
            return None, None
        if "error" not in self.cached:
            code, message = parse_error(self.error_body or b"", self.error_type)
            if self.service == "ec2" and code and self.status < 500:  # EC2's codes say whose fault it was
                code = f"Client.{code}"
            self.cached["error"] = (code, message)
        error: tuple[str | None, str | None] = self.cached["error"]
        return error

    def parameters(self) -> dict[str, Any] | None:
        if "params" not in self.cached:  # as the service reads them (trail_params), secrets hidden
            sent = {k: v for k, v in (self.params or {}).items() if k not in ("Action", "Version")}
            shown = request_parameters(self.service, self.operation, redact(sent, limit=1000))
            self.cached["params"] = plain(shown) if shown else None
        params: dict[str, Any] | None = self.cached["params"]
        return params

    def user_identity(self) -> dict[str, Any]:
        if self.identity is not None:
            return self.identity
        if "identity" not in self.cached:
            self.cached["identity"] = user_identity(self.principal, self.access_key_id, self.session_created)
        identity: dict[str, Any] = self.cached["identity"]
        return identity

    @property
    def username(self) -> str | None:
        identity = self.user_identity()
        if identity.get("type") == "AssumedRole":
            session: str = identity["arn"].rsplit("/", 1)[-1]
            return session
        if identity.get("type") == "AWSService":  # a service assuming a role: the session it opened
            return (self.params or {}).get("RoleSessionName")
        return identity.get("userName")

    def resources(self) -> list[dict[str, str]]:
        found = []
        for key, value in (self.params or {}).items():
            name, _, number = key.partition(".")
            if number.isdigit():  # a list of ids in a query request (EC2's InstanceId.1)
                key = name
            kind = RESOURCE_TYPES.get(f"{key}@{self.service}") or RESOURCE_TYPES.get(key)
            if kind and isinstance(value, str):
                found.append({"ResourceType": kind, "ResourceName": value})
        return found

    def record(self) -> dict[str, Any]:
        """The CloudTrail event record (what ``CloudTrailEvent`` holds as a JSON string)."""
        code, message = self.error()
        event: dict[str, Any] = {
            "eventVersion": EVENT_VERSION, "userIdentity": self.user_identity(),
            "eventTime": _iso(self.stamp), "eventSource": self.source,
            "eventName": self.name, "awsRegion": self.region, "sourceIPAddress": self.source_ip,
            "userAgent": self.user_agent}
        if code:
            event.update(errorCode=code, errorMessage=message)
        event.update({
            "requestParameters": self.parameters(), "responseElements": None, "requestID": self.request_id,
            "eventID": self.event_id, "readOnly": self.read_only,
            "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT,
            "eventCategory": "Management"})
        resources = self.resources()
        if resources:
            event["resources"] = [{"accountId": ACCOUNT, "type": r["ResourceType"], "ARN": r["ResourceName"]}
                                  for r in resources]
        return event

    def lookup_event(self) -> dict[str, Any]:
        """The ``Event`` of a LookupEvents answer."""
        event = {"EventId": self.event_id, "EventName": self.name, "ReadOnly": str(self.read_only).lower(),
                 "EventTime": int(self.stamp), "EventSource": self.source,  # whole seconds, as eventTime
                 "Resources": self.resources(), "CloudTrailEvent": json.dumps(self.record())}
        if self.access_key_id:
            event["AccessKeyId"] = self.access_key_id
        if self.username:
            event["Username"] = self.username
        return event


def user_identity(principal: str, access_key_id: str, session_created: float | None = None) -> dict[str, Any]:
    """``userIdentity`` of a principal ARN (an IAM user, or a session of a role, made at ``session_created``)
    and its access key."""
    from labkit.localcloud.iam.principals import backend

    found = re.match(r"arn:aws:sts::(\d+):assumed-role/([^/]+)/(.+)$", principal)
    if found:
        account, role_name, session = found.groups()
        role_id = _entity_id(lambda: backend().get_role(role_name).id, "AROA")
        attributes = {"mfaAuthenticated": "false"}
        if session_created is not None:
            attributes = {"creationDate": _iso(session_created), **attributes}
        issuer = {"type": "Role", "principalId": role_id, "arn": f"arn:aws:iam::{account}:role/{role_name}",
                  "accountId": account, "userName": role_name}
        context: dict[str, Any] = {"sessionIssuer": issuer, "webIdFederationData": {}, "attributes": attributes}
        identity = {"type": "AssumedRole", "principalId": f"{role_id}:{session}", "arn": principal,
                    "accountId": account, "accessKeyId": access_key_id, "sessionContext": context}
        if session.startswith("i-"):
            context["ec2RoleDelivery"] = "2.0"  # the credentials came from IMDSv2
        return identity
    found = re.match(r"arn:aws:iam::(\d+):user/(?:.*/)?([^/]+)$", principal)
    if found:
        account, name = found.groups()
        user_id = _entity_id(lambda: backend().get_user(name).id, "AIDA")
        return {"type": "IAMUser", "principalId": user_id, "arn": principal, "accountId": account,
                "accessKeyId": access_key_id, "userName": name}
    return {"type": "Unknown", "arn": principal, "accessKeyId": access_key_id}


def _iso(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def service_identity(service_principal: str) -> dict[str, Any]:
    """``userIdentity`` of a call an AWS service makes on your behalf (Lambda assuming a function's role)."""
    return {"type": "AWSService", "invokedBy": service_principal}


def _entity_id(find: Callable[[], Any], prefix: str) -> str:
    try:
        entity_id: str = find()  # (moto's backend() is typed Any)
        return entity_id
    except Exception:  # the user or role is gone by now: CloudTrail keeps what it recorded, we keep the kind
        return prefix + "DELETED"


def parse_error(body: bytes, error_type: str | None) -> tuple[str | None, str | None]:
    """(code, message) from an AWS error answer in any protocol."""
    text = body.decode(errors="replace")
    code = message = None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
        code = str(data.get("__type") or data.get("code") or data.get("Code") or "") or None
        message = data.get("message") or data.get("Message")
    else:
        found = re.search(r"<Code>([^<]+)</Code>", text)
        code = found.group(1) if found else None
        found = re.search(r"<Message>([^<]*)</Message>", text)
        message = html.unescape(found.group(1)) if found else None
    code = code or (error_type or "").split(":", 1)[0] or None
    if code and "#" in code:
        code = code.rsplit("#", 1)[-1]
    return code, message
