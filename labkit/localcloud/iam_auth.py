"""IAM for the local cloud: every caller is a principal, every request is authenticated and authorized.

- Your computer is the IAM user ``lab-admin`` (AdministratorAccess). Its keys are made once per
  ``LABKIT_HOME`` and kept in ``LABKIT_HOME/credentials`` (mode 0600); the cloud re-creates the user with
  the same keys whenever it starts or is reset.
- A request must be SigV4-signed (:mod:`iam_signing`: in the Authorization header, or in the query string of a
  presigned URL) with the keys of an IAM user or of a role session (STS); otherwise it is refused with the
  code AWS uses for that protocol (InvalidClientTokenId, UnrecognizedClientException, InvalidAccessKeyId,
  SignatureDoesNotMatch, ...). The request time is not checked against the cloud's clock: code in the lab
  signs with the lab clock, which may run ahead of real time. A presigned S3 URL's expiry is checked against
  real time, as S3 does.
- The request is then authorized against the principal's identity policies (:mod:`iam_policy`); a
  denial answers as AWS does (:mod:`iam_errors`). ``sts:AssumeRole`` also needs the role's trust policy,
  and a call that hands a role to Lambda needs ``iam:PassRole``.

Lambda workers and EC2 instances get role-session credentials from :func:`role_session`.
"""
from __future__ import annotations

import configparser
import datetime as dt
import json
import logging
import os
import secrets
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.exceptions import NotFoundException as RoleNotFound
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends
from werkzeug.wrappers import Response

from labkit.localcloud import iam_policy, iam_signing
from labkit.localcloud.iam_errors import Refusal, access_denied, auth_failure, render
from labkit.localcloud.iam_requests import Classified, resource_arn
from labkit.localcloud.services import ApiRequest

log = logging.getLogger("labkit.localcloud.iam")
_SERVICE_LOCK = threading.Lock()
ADMIN_USER = "lab-admin"
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
CREDENTIALS_FILE = "credentials"
PROFILE = "labkit"
ACCOUNT = DEFAULT_ACCOUNT_ID
ALWAYS_ALLOWED = {"sts:GetCallerIdentity"}  # AWS answers it even under an explicit deny
PASS_ROLE = {("lambda", "CreateFunction"): "lambda.amazonaws.com",
             ("lambda", "UpdateFunctionConfiguration"): "lambda.amazonaws.com"}


@dataclass(frozen=True)
class AdminKeys:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never show the secret
        return f"AdminKeys(access_key_id={self.access_key_id!r})"


def credentials_path(home: Path) -> Path:
    return Path(home) / CREDENTIALS_FILE


def read_admin_keys(home: Path) -> AdminKeys | None:
    """The admin user's keys of the cloud in ``home`` (None before the cloud first started there)."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(credentials_path(home).read_text())
        section = parser[PROFILE]
        return AdminKeys(section["aws_access_key_id"], section["aws_secret_access_key"])
    except (OSError, KeyError, configparser.Error):
        return None


def _new_keys() -> AdminKeys:
    alphabet = string.ascii_uppercase + "234567"
    key_id = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
    return AdminKeys(key_id, secret)


def ensure_admin_keys(home: Path) -> AdminKeys:
    """Read the admin keys of ``home`` or make them: a shared-credentials file readable by its owner only."""
    keys = read_admin_keys(home)
    path = credentials_path(home)
    if keys is not None:
        path.chmod(0o600)
        return keys
    keys = _new_keys()
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"# The local cloud's IAM user {ADMIN_USER} (AdministratorAccess). Keep this file private.\n"
                  f"[{PROFILE}]\naws_access_key_id = {keys.access_key_id}\n"
                  f"aws_secret_access_key = {keys.secret_access_key}\n")
    tmp.replace(path)
    return keys


# -- principals -------------------------------------------------------------------------------------------
@dataclass
class Principal:
    """Who signed a request: an IAM user, or a session of an IAM role."""

    arn: str
    secret_access_key: str = field(repr=False)
    documents: Callable[[], list[str]] = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expiration: dt.datetime | None = None
    username: str | None = None


def _policy_documents(entity: Any) -> list[str]:
    documents = list(entity.policies.values())
    for policy in entity.managed_policies.values():
        documents += [v.document for v in policy.versions if v.is_default]
    return documents


def _iam() -> Any:
    return iam_backends[ACCOUNT]["aws"]


def user_documents(user: Any) -> list[str]:
    documents = _policy_documents(user)
    for group in _iam().groups.values():
        if user in group.users:
            documents += _policy_documents(group)
    return documents


def role_documents(role_name: str) -> list[str]:
    try:
        return _policy_documents(_iam().get_role(role_name))
    except RoleNotFound:  # a deleted role grants nothing
        return []


_SERVICE_PRINCIPALS: dict[str, Principal] = {}


def service_keys(service: str, actions: tuple[str, ...]) -> AdminKeys:
    """Keys for the local cloud's own part named ``service`` (``lambda.amazonaws.com``) to call the public API
    where AWS acts by itself (Lambda and EventBridge publishing their metrics, EventBridge reading its rules).
    They are allowed ``actions`` only, live in this daemon's memory only, and identify the caller by the
    service principal's name, as CloudTrail shows such calls (``invokedBy``)."""
    with _SERVICE_LOCK:
        for key_id, principal in _SERVICE_PRINCIPALS.items():
            if principal.arn == service:
                return AdminKeys(key_id, principal.secret_access_key)
        keys = _new_keys()
        document = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": list(actions), "Resource": "*"}]})
        _SERVICE_PRINCIPALS[keys.access_key_id] = Principal(service, keys.secret_access_key, lambda: [document])
        return keys


def find_principal(access_key_id: str) -> Principal | None:
    """The user or role session owning ``access_key_id`` (moto's IAM and STS records), or one of the cloud's
    own service principals (:func:`service_keys`)."""
    if access_key_id in _SERVICE_PRINCIPALS:
        return _SERVICE_PRINCIPALS[access_key_id]
    if access_key_id.startswith("ASIA"):
        for session in reversed(sts_backends[ACCOUNT]["aws"].assumed_roles):
            if session.access_key_id == access_key_id:
                role_name = session.role_arn.rsplit("/", 1)[-1]
                return Principal(session.arn, session.secret_access_key, lambda: role_documents(role_name),
                                 session.session_token, session.expiration)
        return None
    for user in list(_iam().users.values()):
        for key in user.access_keys:
            if key.access_key_id == access_key_id and key.status == "Active":
                return Principal(user.arn, key.secret_access_key, lambda u=user: user_documents(u),
                                 username=user.name)
    return None


def role_session(role_arn: str, session_name: str, region: str, seconds: int = 43200) -> dict[str, str]:
    """Temporary credentials of a role session, as STS issues them (``ASIA...`` key, secret, token, expiry)."""
    session = sts_backends[ACCOUNT]["aws"].assume_role(
        region_name=region, role_session_name=session_name, role_arn=role_arn, policy="", duration=seconds,
        external_id="")
    return {"AccessKeyId": session.access_key_id, "SecretAccessKey": session.secret_access_key,
            "SessionToken": session.session_token,
            "Expiration": session.expiration.strftime("%Y-%m-%dT%H:%M:%SZ")}


def trust_allows(role: Any, service: str | None = None, principal_arn: str | None = None) -> bool:
    """Whether the role's trust policy lets ``service`` (or the principal ``principal_arn``) assume it."""
    for statement in iam_policy.parse(role.assume_role_policy_document):
        if statement.get("Effect") != "Allow" or not iam_policy.statement_applies(
                {"Action": statement.get("Action", [])}, "sts:AssumeRole", "*"):
            continue
        if service and iam_policy.principal_matches(statement, "Service", service):
            return True
        if principal_arn and (iam_policy.principal_matches(statement, "AWS", principal_arn)
                              or iam_policy.principal_matches(statement, "AWS", f"arn:aws:iam::{ACCOUNT}:root")
                              or iam_policy.principal_matches(statement, "AWS", ACCOUNT)):
            return True
    return False


def role_may(role: Any, action: str, resource: str = "*") -> bool:
    return iam_policy.allowed_by(_policy_documents(role), action, resource)


# -- the request hook --------------------------------------------------------------------------------------
class Authorizer:
    """The request hook: authenticate, authorize, refuse as AWS does, or let the request through."""

    def __init__(self, enforce: bool = True) -> None:
        self.enforce = enforce
        self.admin: AdminKeys | None = None
        self.lock = threading.Lock()

    def install_admin(self, home: Path) -> AdminKeys:
        """Create ``lab-admin`` with AdministratorAccess and the keys stored under ``home``."""
        keys = ensure_admin_keys(home)
        iam = _iam()
        if ADMIN_USER not in iam.users:
            iam.create_user(region_name="us-east-1", user_name=ADMIN_USER, path="/")
        user = iam.users[ADMIN_USER]
        if ADMIN_POLICY not in user.managed_policies:
            iam.attach_user_policy(ADMIN_POLICY, ADMIN_USER)
        if not any(k.access_key_id == keys.access_key_id for k in user.access_keys):
            key = iam.create_access_key(ADMIN_USER)
            key.access_key_id, key.secret_access_key = keys.access_key_id, keys.secret_access_key
        self.admin = keys
        return keys

    def __call__(self, call: ApiRequest) -> Response | None:
        """None to let the request through (with ``environ['labkit.principal']`` set), or the refusal."""
        environ, headers = call.request.environ, call.request.headers
        try:
            signed = iam_signing.read(headers, call.request.args, call.protocol)
            if signed is None:
                if self.enforce:
                    raise auth_failure("unsigned", call.protocol)
                return None
            principal = self._authenticate(call, b"" if signed.s3 else call.body, signed)
            environ["labkit.principal"] = principal.arn
            if signed.presigned and not signed.s3:  # moto finds the service (and caller) in this header only
                environ["HTTP_AUTHORIZATION"] = iam_signing.as_header(signed)
            if self.enforce:
                self._authorize(principal, call.classified, signed.region or call.region or "")
        except Refusal as refusal:
            return render(refusal, call.protocol)
        return None

    def _authenticate(self, call: ApiRequest, body: bytes, signed: iam_signing.Signed) -> Principal:
        protocol = call.protocol
        principal = find_principal(signed.key_id)
        if principal is None:
            raise auth_failure("unknown-key", protocol)
        if signed.token != principal.session_token:
            raise auth_failure("bad-token", protocol)
        if principal.expiration and principal.expiration < dt.datetime.now(dt.timezone.utc).replace(tzinfo=None):
            raise auth_failure("expired", protocol)
        if not iam_signing.matches(call.request.environ, call.request.headers, call.request.args, body, signed,
                                   principal.secret_access_key, principal.session_token):
            raise auth_failure("signature", protocol)
        return principal

    def _authorize(self, principal: Principal, request: Classified, region: str) -> None:
        action = request.action
        if action in ALWAYS_ALLOWED:
            return
        resource = resource_arn(request, region, ACCOUNT)
        context = {"aws:PrincipalArn": principal.arn, "aws:RequestedRegion": region,
                   "aws:PrincipalAccount": ACCOUNT}
        if principal.username:
            context["aws:username"] = principal.username
        documents = principal.documents()
        verdict = iam_policy.evaluate(documents, action, resource, context)
        if action == "sts:AssumeRole" and verdict != iam_policy.EXPLICIT_DENY:
            verdict = self._assume_role_verdict(principal, resource, verdict)
        if verdict != iam_policy.ALLOW:
            raise access_denied(request.protocol, request.service, principal.arn, action, resource,
                                verdict == iam_policy.EXPLICIT_DENY)
        passed_to = PASS_ROLE.get((request.service, request.operation))
        role_arn = request.params.get("Role")
        if passed_to and role_arn:
            verdict = iam_policy.evaluate(documents, "iam:PassRole", role_arn,
                                          {**context, "iam:PassedToService": passed_to})
            if verdict != iam_policy.ALLOW:
                raise access_denied(request.protocol, request.service, principal.arn, "iam:PassRole", role_arn,
                                    verdict == iam_policy.EXPLICIT_DENY)

    def _assume_role_verdict(self, principal: Principal, role_arn: str, verdict: str) -> str:
        try:
            role = _iam().get_role_by_arn(role_arn)
        except RoleNotFound:
            return iam_policy.IMPLICIT_DENY
        named = any(statement.get("Effect") == "Allow" and iam_policy.principal_matches(statement, "AWS", principal.arn)
                    for statement in iam_policy.parse(role.assume_role_policy_document))
        if named:  # a trust policy naming the principal itself is enough within the account
            return iam_policy.ALLOW
        return verdict if trust_allows(role, principal_arn=principal.arn) else iam_policy.IMPLICIT_DENY
