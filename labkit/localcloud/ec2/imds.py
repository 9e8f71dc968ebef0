"""Instance metadata (IMDSv2) for the EC2 sandboxes: the instance profile role's credentials, as on EC2.

Each instance's processes find the service through ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` (boto3's
standard lookup), a path of the cloud's own address naming the instance; nothing else about credentials is
in the instance's environment or files. As on EC2: a session token from ``PUT /latest/api/token`` is
required (IMDSv2), credentials come from ``/latest/meta-data/iam/security-credentials/<role>`` as a role
session named after the instance and are renewed before they expire, and an instance without an instance
profile has no ``iam/`` entries at all (boto3 then finds no credentials).
"""
from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from typing import Any

from moto.ec2.models import ec2_backends
from moto.iam.exceptions import NotFoundException
from werkzeug.wrappers import Request, Response

from labkit.localcloud.cloudtrail.service import CloudTrailService
from labkit.localcloud.core.clock import ClockService
from labkit.localcloud.core.services import CloudContext, Route, Service
from labkit.localcloud.iam.principals import ACCOUNT, backend, role_session, trust_allows

PREFIX = "/_labkit/imds/"
MAX_TTL = 21600
RENEW_BEFORE = 900  # seconds: EC2 hands out fresh credentials well before the old ones expire


class ImdsService(Service):
    """IMDSv2 for every EC2 sandbox, under ``/_labkit/imds/<region>/<instance id>/``."""

    name = "imds"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (instance id, expiry)
        self.sessions: dict[str, dict[str, str]] = {}  # instance id -> credentials
        self.lock = threading.Lock()

    def routes(self) -> list[tuple[str, str, Route]]:
        return [(method, PREFIX + "*", self.handle) for method in ("GET", "PUT")]

    def endpoint(self, instance: Any) -> str:
        """What ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` is on this instance."""
        return f"{self.ctx.endpoint}{PREFIX}{instance.region_name}/{instance.id}/"

    def handle(self, request: Request) -> Response:
        region, _, rest = request.path.removeprefix(PREFIX).partition("/")
        instance_id, _, path = rest.partition("/")
        instance = _find_instance(region, instance_id)
        if instance is None or instance.state != "running":
            return Response("", status=404)
        if request.method == "PUT":
            if path != "latest/api/token":
                return Response("", status=405)
            return self._token(request, instance_id)
        token = request.headers.get("X-aws-ec2-metadata-token", "")
        with self.lock:
            owner, expires = self.tokens.get(token, ("", 0.0))
        if owner != instance_id or expires < time.time():
            return Response("", status=401)
        return self._metadata(instance, path.removeprefix("latest/meta-data/"))

    def _token(self, request: Request, instance_id: str) -> Response:
        try:
            ttl = int(request.headers.get("X-aws-ec2-metadata-token-ttl-seconds", ""))
        except ValueError:
            return Response("", status=400)
        if not 1 <= ttl <= MAX_TTL:
            return Response("", status=400)
        token = secrets.token_urlsafe(42)
        with self.lock:
            now = time.time()
            self.tokens = {t: v for t, v in self.tokens.items() if v[1] > now}
            self.tokens[token] = (instance_id, now + ttl)
        return Response(token, headers={"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)}, mimetype="text/plain")

    def _metadata(self, instance: Any, path: str) -> Response:
        role = _profile_role(instance)
        simple = {"instance-id": instance.id, "ami-id": instance.image_id, "instance-type": instance.instance_type,
                  "local-ipv4": instance.private_ip, "placement/availability-zone": instance.availability_zone,
                  "placement/region": instance.region_name, "hostname": instance.private_dns_name}
        if path in simple:
            return Response(str(simple[path]), mimetype="text/plain")
        if path in ("", "/"):
            entries = sorted({p.split("/")[0] + ("/" if "/" in p else "") for p in simple} | ({"iam/"} if role else set()))
            return Response("\n".join(entries), mimetype="text/plain")
        if role is None or not path.startswith("iam/"):
            return Response("", status=404)
        if path in ("iam", "iam/"):
            return Response("info\nsecurity-credentials/", mimetype="text/plain")
        if path == "iam/info":
            return _json({"Code": "Success", "LastUpdated": _now(), "InstanceProfileArn": instance.iam_instance_profile
                          .get("Arn", ""), "InstanceProfileId": "AIPA" + instance.id[2:].upper()[:17]})
        if path.rstrip("/") == "iam/security-credentials":
            return Response(role.name, mimetype="text/plain")
        if path == f"iam/security-credentials/{role.name}":
            if not trust_allows(role, service="ec2.amazonaws.com"):
                return _json({"Code": "AssumeRoleUnauthorizedAccess", "Message": (
                    f"EC2 cannot assume the role {role.name}. Please see documentation at "
                    "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_switch-role-ec2.html"
                    "#roles-usingrole-ec2instance-roles."), "LastUpdated": _now()})
            session = self._credentials(instance, role)
            return _json({"Code": "Success", "LastUpdated": _now(), "Type": "AWS-HMAC",
                          "AccessKeyId": session["AccessKeyId"], "SecretAccessKey": session["SecretAccessKey"],
                          "Token": session["SessionToken"], "Expiration": self._on_lab_clock(session["Expiration"])})
        return Response("", status=404)

    def _credentials(self, instance: Any, role: Any) -> dict[str, str]:
        with self.lock:
            current = self.sessions.get(instance.id)
            if current and current["RoleArn"] == role.arn and _seconds_left(current["Expiration"]) > RENEW_BEFORE:
                return {k: v for k, v in current.items() if k != "RoleArn"}
            fresh = role_session(role.arn, instance.id, instance.region_name, seconds=MAX_TTL)
            self.ctx.state.mark("sts")  # a session made outside a request: kept within half a second
            trail = self.ctx.services.find(CloudTrailService)
            if trail is not None:  # as on AWS: EC2 assumed the instance profile's role
                trail.service_assumed_role("ec2.amazonaws.com", role.arn, instance.id, instance.region_name)
            self.sessions[instance.id] = {**fresh, "RoleArn": role.arn}
            return fresh

    def _on_lab_clock(self, expiration: str) -> str:
        """The expiry as the instance's clock (the lab clock) reads it, so boto3 there renews in time."""
        clock = self.ctx.services.find(ClockService)
        offset = clock.clock.offset if clock is not None else 0.0
        when = dt.datetime.strptime(expiration, "%Y-%m-%dT%H:%M:%SZ") + dt.timedelta(seconds=offset)
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    def forget(self, instance_id: str) -> None:
        with self.lock:
            self.sessions.pop(instance_id, None)
            self.tokens = {t: v for t, v in self.tokens.items() if v[0] != instance_id}

    def after_reset(self) -> None:
        with self.lock:
            self.sessions.clear()
            self.tokens.clear()


def _find_instance(region: str, instance_id: str) -> Any:
    try:
        return ec2_backends[ACCOUNT][region].get_instance_by_id(instance_id)
    except KeyError:  # an unknown region (an unknown instance gives None)
        return None


def _profile_role(instance: Any) -> Any:
    """The role of the instance's instance profile, or None."""
    profile = instance.iam_instance_profile or {}
    iam = backend()
    try:
        found = iam.get_instance_profile_by_arn(profile["Arn"]) if profile.get("Arn") else \
            iam.get_instance_profile(profile.get("Name", ""))
    except NotFoundException:  # no profile, or one deleted since launch
        return None
    return found.roles[0] if found.roles else None


def _seconds_left(expiration: str) -> float:
    when = dt.datetime.strptime(expiration, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    return (when - dt.datetime.now(dt.timezone.utc)).total_seconds()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(data: dict[str, Any]) -> Response:
    return Response(json.dumps(data, indent=2), mimetype="text/plain")
