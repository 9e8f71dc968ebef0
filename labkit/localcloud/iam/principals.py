"""The principals of the local cloud's IAM: who signed a request, and what their policies say.

A request is signed by an IAM user (moto's IAM records), a session of an IAM role (moto's STS records), or one of
the cloud's own service principals (:func:`service_keys`: Lambda and EventBridge acting by themselves).
:func:`backend` is moto's IAM backend for every other part of the cloud (public, typed); :func:`role_session`
issues role credentials (Lambda workers, EC2 instance profiles); :func:`trust_allows` and :func:`role_may` read a
role's trust and identity policies.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.exceptions import NotFoundException as RoleNotFound
from moto.iam.models import IAMBackend, iam_backends
from moto.sts.models import sts_backends

from labkit import iam_policy
from labkit.localcloud.core.patches import find
from labkit.localcloud.core.timing import TimingService
from labkit.localcloud.credentials import AccessKeys, new_keys
from labkit.localcloud.iam.propagation import Propagation

ACCOUNT = DEFAULT_ACCOUNT_ID
_SERVICE_LOCK = threading.Lock()


@dataclass
class Principal:
    """Who signed a request: an IAM user, or a session of an IAM role."""

    arn: str
    secret_access_key: str = field(repr=False)
    documents: Callable[[], list[str]] = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expiration: dt.datetime | None = None
    username: str | None = None


@dataclass(frozen=True)
class RoleView:
    """A role as the data plane sees it (realistic mode: as it was ``iam_propagation`` seconds ago)."""

    arn: str
    name: str
    assume_role_policy_document: str
    documents: tuple[str, ...]


@dataclass(frozen=True)
class IamState:
    """What authorizes requests: each role (by name) and each user's policies (by ARN)."""

    roles: dict[str, RoleView]
    users: dict[str, tuple[str, ...]]


def policy_documents(entity: Any) -> list[str]:
    if isinstance(entity, RoleView):
        return list(entity.documents)
    documents = list(entity.policies.values())
    for policy in entity.managed_policies.values():
        documents += [v.document for v in policy.versions if v.is_default]
    return documents


def backend() -> IAMBackend:
    """moto's IAM backend of the lab's account (IAM is global: one backend, partition ``aws``)."""
    return iam_backends[ACCOUNT]["aws"]


def _capture() -> IamState:
    iam = backend()
    roles = {role.name: RoleView(role.arn, role.name, role.assume_role_policy_document,
                                 tuple(policy_documents(role))) for role in list(iam.roles.values())}
    users = {user.arn: tuple(_live_user_documents(user)) for user in list(iam.users.values())}
    return IamState(roles, users)


PROPAGATION = Propagation(_capture)


def _timing() -> TimingService | None:
    timing = find(TimingService)
    return timing if timing is not None and timing.realistic else None


def propagated() -> IamState | None:
    """The IAM state authorization reads now: None for the records as they are (fast mode, nothing pending)."""
    timing = _timing()
    return PROPAGATION.view(timing.now(), timing.delay("iam_propagation")) if timing is not None else None


def note_change(before: bool) -> None:
    """An IAM write request is about to be served (``before``) or was served: keep the states (realistic mode)."""
    timing = _timing()
    if timing is None:
        return
    if before:
        PROPAGATION.before_change()
    else:
        PROPAGATION.after_change(timing.now(), timing.delay("iam_propagation"))


def data_plane_role(role_arn: str) -> Any:
    """The role ``role_arn`` as authorization and Lambda see it (a moto Role, or a :class:`RoleView` while a change
    propagates); raises moto's NotFoundException when it does not exist there (yet)."""
    state = propagated()
    if state is None:
        return backend().get_role_by_arn(role_arn)
    found = next((r for r in state.roles.values() if r.arn == role_arn), None)
    if found is None:
        raise RoleNotFound(f"Role {role_arn} not found")
    return found


def _live_user_documents(user: Any) -> list[str]:
    documents = policy_documents(user)
    for group in backend().groups.values():
        if user in group.users:
            documents += policy_documents(group)
    return documents


def user_documents(user: Any) -> list[str]:
    state = propagated()
    if state is not None and user.arn in state.users:
        return list(state.users[user.arn])
    return _live_user_documents(user)


def role_documents(role_name: str) -> list[str]:
    state = propagated()
    if state is not None:
        role = state.roles.get(role_name)
        return list(role.documents) if role is not None else []
    try:
        return policy_documents(backend().get_role(role_name))
    except RoleNotFound:  # a deleted role grants nothing
        return []


_SERVICE_PRINCIPALS: dict[str, Principal] = {}


def service_keys(service: str, actions: tuple[str, ...]) -> AccessKeys:
    """Keys for the local cloud's own part named ``service`` (``lambda.amazonaws.com``) to call the public API
    where AWS acts by itself (Lambda and EventBridge publishing their metrics, EventBridge reading its rules).
    They are allowed ``actions`` only, live in this daemon's memory only, and identify the caller by the
    service principal's name, as CloudTrail shows such calls (``invokedBy``)."""
    with _SERVICE_LOCK:
        for key_id, principal in _SERVICE_PRINCIPALS.items():
            if principal.arn == service:
                return AccessKeys(key_id, principal.secret_access_key)
        keys = new_keys()
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
    for user in list(backend().users.values()):
        for key in user.access_keys:
            if key.access_key_id == access_key_id and key.status == "Active":
                return Principal(user.arn, key.secret_access_key, functools.partial(user_documents, user),
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
    return iam_policy.allowed_by(policy_documents(role), action, resource)
