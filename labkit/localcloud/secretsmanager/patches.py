"""The local cloud's changes to moto's Secrets Manager (listed, checked and applied by
:mod:`labkit.localcloud.core.patches`).

A secret scheduled for deletion (DeleteSecret with a recovery window) can be described, listed with
``IncludePlannedDeletion``, restored, or deleted for good (``ForceDeleteWithoutRecovery``); every other operation
on it is refused with ``InvalidRequestException`` "You can't perform this operation on the secret because it was
marked for deletion.", and CreateSecret of its name with "You can't create this secret because a secret with this
name is already scheduled for deletion." (AWS's API reference lists "The secret is scheduled for deletion" among
each such operation's InvalidRequestException causes). The checks run before moto's, so a refused call changes
nothing.

ListSecretVersionIds answers the secret's ARN (moto: the SecretId as passed, so a name where the ARN belongs) and
each version's own creation date (moto: the time of the call).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from labkit.localcloud.core.patches import Patch
from labkit.localcloud.secretsmanager.exceptions import (
    BOTH_DELETE_OPTIONS,
    MARKED_FOR_DELETION,
    NAME_SCHEDULED,
    RECOVERY_WINDOW,
    InvalidParameter,
    InvalidRequest,
)

# moto's backend method -> the name of its parameter that holds the SecretId (as the caller passed it)
REFUSED_WHEN_SCHEDULED = {"get_secret_value": "secret_id", "put_secret_value": "secret_id",
                          "update_secret": "secret_id", "update_secret_version_stage": "secret_id",
                          "rotate_secret": "secret_id", "cancel_rotate_secret": "secret_id",
                          "put_resource_policy": "secret_id", "delete_resource_policy": "secret_id",
                          "tag_resource": "arn", "untag_resource": "arn"}


def _scheduled(backend: Any, secret_id: Any) -> bool:
    secret = backend.secrets.get(secret_id) if isinstance(secret_id, str) else None
    return secret is not None and bool(secret.is_deleted())


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], position: int, name: str) -> Any:
    return args[position] if len(args) > position else kwargs.get(name)


def _refused_when_scheduled(parameter: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if _scheduled(self, _argument(args, kwargs, 0, parameter)):
                raise InvalidRequest(MARKED_FOR_DELETION)
            return original(self, *args, **kwargs)
        return wrapper
    return wrap


def _create_secret(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_secret(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _scheduled(self, _argument(args, kwargs, 0, "name")):
            raise InvalidRequest(NAME_SCHEDULED)
        return original(self, *args, **kwargs)
    return create_secret


def _delete_secret(original: Callable[..., Any]) -> Callable[..., Any]:
    def delete_secret(self: Any, *args: Any, **kwargs: Any) -> Any:
        window = _argument(args, kwargs, 1, "recovery_window_in_days")
        force = bool(_argument(args, kwargs, 2, "force_delete_without_recovery"))
        if window is not None and not 7 <= int(window) <= 30:
            raise InvalidParameter(RECOVERY_WINDOW)
        if window is not None and force:
            raise InvalidParameter(BOTH_DELETE_OPTIONS)
        if not force and _scheduled(self, _argument(args, kwargs, 0, "secret_id")):
            raise InvalidRequest(MARKED_FOR_DELETION)
        return original(self, *args, **kwargs)
    return delete_secret


def _list_secret_version_ids(original: Callable[..., Any]) -> Callable[..., Any]:
    def list_secret_version_ids(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> str:
        answer = json.loads(original(self, secret_id, *args, **kwargs))
        secret = self.secrets[secret_id]
        answer["ARN"] = secret.arn
        for item in answer.get("Versions", []):
            created = secret.versions.get(item.get("VersionId"), {}).get("createdate")
            if created is not None:
                item["CreatedDate"] = created
        if not answer.get("NextToken"):
            answer.pop("NextToken", None)
        return json.dumps(answer)
    return list_secret_version_ids


def patches() -> list[Patch]:
    """The Secrets Manager patches."""
    from moto.secretsmanager.models import SecretsManagerBackend

    scheduled = [Patch(SecretsManagerBackend, method, "a secret scheduled for deletion is refused with AWS's "
                       "InvalidRequestException text (moto: another text, prefixed with botocore's own 'An error "
                       "occurred (...) when calling ...', or no refusal at all)", _refused_when_scheduled(parameter))
                 for method, parameter in REFUSED_WHEN_SCHEDULED.items()]
    return [*scheduled,
            Patch(SecretsManagerBackend, "create_secret", "the name of a secret scheduled for deletion is "
                  "InvalidRequestException as on AWS (moto: ResourceExistsException)", _create_secret),
            Patch(SecretsManagerBackend, "delete_secret", "RecoveryWindowInDays out of 7-30, both it and "
                  "ForceDeleteWithoutRecovery, and a second scheduling are refused with AWS's text (moto's carries "
                  "botocore's prefix and its source's indentation)", _delete_secret),
            Patch(SecretsManagerBackend, "list_secret_version_ids", "the answer's ARN is the secret's ARN and each "
                  "version's CreatedDate its creation (moto: the SecretId as passed, and the time of the call)",
                  _list_secret_version_ids)]
