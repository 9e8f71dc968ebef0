"""IAM's request hook: every caller is a principal, every request is authenticated and authorized.

- Your computer is the IAM user ``lab-admin`` (AdministratorAccess). Its keys are made once per
  ``LABKIT_HOME`` and kept in ``LABKIT_HOME/credentials`` (mode 0600, :mod:`labkit.localcloud.credentials`); the
  cloud re-creates the user with the same keys whenever it starts or is reset.
- A request must be SigV4-signed (:mod:`.signing`: in the Authorization header, or in the query string of a
  presigned URL) with the keys of an IAM user or of a role session (STS); otherwise it is refused with the
  code AWS uses for that protocol (InvalidClientTokenId, UnrecognizedClientException, InvalidAccessKeyId,
  SignatureDoesNotMatch, ...). The request time is not checked against the cloud's clock: code in the lab
  signs with the lab clock, which may run ahead of real time. A presigned S3 URL's expiry is checked against
  real time, as S3 does.
- The request is then authorized against the principal's identity policies (:mod:`.policy`); a
  denial answers as AWS does (:mod:`.exceptions`). ``sts:AssumeRole`` also needs the role's trust policy,
  and a call that hands a role to Lambda needs ``iam:PassRole``.

Lambda workers and EC2 instances get role-session credentials from :func:`.principals.role_session`.
"""
from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from moto.iam.exceptions import NotFoundException as RoleNotFound
from werkzeug.wrappers import Response

from labkit import iam_policy
from labkit.localcloud.core.errors import AwsError
from labkit.localcloud.core.requests import Classified
from labkit.localcloud.core.services import ApiRequest
from labkit.localcloud.credentials import ADMIN_USER, AccessKeys, ensure_admin_keys
from labkit.localcloud.iam import signing
from labkit.localcloud.iam.exceptions import access_denied, auth_failure
from labkit.localcloud.iam.principals import ACCOUNT, Principal, backend, data_plane_role, find_principal, trust_allows
from labkit.localcloud.iam.resources import resource_arn, resource_shown

ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
ALWAYS_ALLOWED = {"sts:GetCallerIdentity"}  # AWS answers it even under an explicit deny
PASS_ROLE = {("lambda", "CreateFunction"): "lambda.amazonaws.com",
             ("lambda", "UpdateFunctionConfiguration"): "lambda.amazonaws.com"}


class Authorizer:
    """The request hook: authenticate, authorize, refuse as AWS does, or let the request through."""

    def __init__(self, enforce: bool = True) -> None:
        self.enforce = enforce
        self.admin: AccessKeys | None = None
        self.lock = threading.Lock()

    def install_admin(self, home: Path) -> AccessKeys:
        """Create ``lab-admin`` with AdministratorAccess and the keys stored under ``home``."""
        keys = ensure_admin_keys(home)
        iam = backend()
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

    def forget_other_admin_keys(self, home: Path) -> None:
        """Remove ``lab-admin``'s keys that are not the ones stored under ``home`` (a checkpoint's, of another lab)."""
        keys = ensure_admin_keys(home)
        iam = backend()
        user = iam.users.get(ADMIN_USER)
        if user is None:
            return
        for key in list(user.access_keys):
            if key.access_key_id != keys.access_key_id:
                user.access_keys.remove(key)
                for name, held in list(iam.access_keys.items()):
                    if held is key:
                        del iam.access_keys[name]

    def __call__(self, call: ApiRequest) -> Response | None:
        """None to let the request through (with ``environ['labkit.principal']`` set), or the refusal."""
        environ, headers = call.request.environ, call.request.headers
        try:
            signed = signing.read(headers, call.request.args, call.protocol)
            if signed is None:
                if self.enforce:
                    raise auth_failure("unsigned", call.protocol)
                return None
            principal = self._authenticate(call, b"" if signed.s3 else call.body, signed)
            environ["labkit.principal"] = principal.arn
            if signed.presigned and not signed.s3:  # moto finds the service (and caller) in this header only
                environ["HTTP_AUTHORIZATION"] = signing.as_header(signed)
            if self.enforce:
                if call.classified is None:  # signed, but no service in a well-formed credential scope
                    raise auth_failure("signature", call.protocol)
                self._authorize(principal, call.classified, signed.region or call.region or "")
        except AwsError as error:
            return error.answer(call.protocol)
        return None

    def _authenticate(self, call: ApiRequest, body: bytes, signed: signing.Signed) -> Principal:
        protocol = call.protocol
        principal = find_principal(signed.key_id)
        if principal is None:
            raise auth_failure("unknown-key", protocol)
        if signed.token != principal.session_token:
            raise auth_failure("bad-token", protocol)
        if principal.expiration and principal.expiration < dt.datetime.now(dt.timezone.utc).replace(tzinfo=None):
            raise auth_failure("expired", protocol)
        if not signing.matches(call.request.environ, call.request.headers, call.request.args, body, signed,
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
            raise access_denied(request.protocol, principal.arn, action, resource_shown(request, resource),
                                verdict == iam_policy.EXPLICIT_DENY)
        passed_to = PASS_ROLE.get((request.service, request.operation))
        role_arn = request.params.get("Role")
        if passed_to and role_arn:
            verdict = iam_policy.evaluate(documents, "iam:PassRole", role_arn,
                                          {**context, "iam:PassedToService": passed_to})
            if verdict != iam_policy.ALLOW:
                raise access_denied(request.protocol, principal.arn, "iam:PassRole", role_arn,
                                    verdict == iam_policy.EXPLICIT_DENY)

    def _assume_role_verdict(self, principal: Principal, role_arn: str, verdict: str) -> str:
        try:
            role = data_plane_role(role_arn)  # as authorization sees it (realistic mode: a change propagates)
        except RoleNotFound:
            return iam_policy.IMPLICIT_DENY
        named = any(statement.get("Effect") == "Allow" and iam_policy.principal_matches(statement, "AWS", principal.arn)
                    for statement in iam_policy.parse(role.assume_role_policy_document))
        if named:  # a trust policy naming the principal itself is enough within the account
            return iam_policy.ALLOW
        return verdict if trust_allows(role, principal_arn=principal.arn) else iam_policy.IMPLICIT_DENY
