"""One error root for labkit; narrow subclasses carry the context a student needs to fix things."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

if TYPE_CHECKING:  # pragma: no cover - types only
    from tenacity import RetryCallState

T = TypeVar("T")


class LabkitError(Exception):
    """Base of every error labkit raises on purpose.

    Attributes:
        hint: one sentence on how to fix it, shown after the message.
        exit_code: the ``labkit`` command's exit status when it stops on this error (see :data:`EXIT_CODES`).
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n  How to fix: {self.hint}" if self.hint else base


class CloudError(LabkitError):
    """The local cloud could not be started, reached or stopped."""


class StateUnreadable(CloudError):
    """The lab's saved state cannot be read by this labkit (another version wrote it, or a file is damaged)."""

    exit_code = 4


class CheckpointError(CloudError):
    """A checkpoint cannot be found, read or restored."""

    exit_code = 5


EXIT_CODES = {0: "done", 1: "failed: the message says why and how to fix it", 2: "the command line is wrong",
              3: "labkit cloud status: the local cloud is stopped",
              4: "the lab's saved state cannot be read by this labkit (the message says what to do)",
              5: "no such checkpoint, or one this labkit cannot restore"}
"""The ``labkit`` command's exit statuses (also in ``labkit --help``), for scripts and the classroom Hub."""


class StepError(LabkitError):
    """A provisioning step failed; names the step and what AWS (or the local cloud) answered."""

    def __init__(self, step: int | str, message: str, hint: str | None = None) -> None:
        super().__init__(f"Step {step}: {message}", hint)
        self.step = step


class ConfigError(LabkitError):
    """The lab's configuration is invalid (unknown target, bad name, missing confirmation)."""


class CheckFailed(LabkitError):
    """A verification found the system not as it should be."""


class AddressUnknown(LabkitError):
    """Your computer's address could not be learned (https://checkip.amazonaws.com, or the local cloud's)."""


class AccessDenied(LabkitError):
    """AWS (or the local cloud, which enforces IAM the same way) refused a call for lack of permission.

    Never read as "the resource does not exist": the resource may well be there.
    """


# -- AWS error codes: branch on these, never on message text --------------------------------------------------
GONE = frozenset({
    "ResourceNotFoundException", "NoSuchEntity", "NoSuchBucket", "404", "NotFound",
    "DBInstanceNotFound", "DBSubnetGroupNotFoundFault",
    "InvalidGroup.NotFound", "InvalidSubnetID.NotFound", "InvalidVpcID.NotFound", "InvalidRouteTableID.NotFound",
    "InvalidInternetGatewayID.NotFound", "InvalidVpcEndpointId.NotFound", "InvalidInstanceID.NotFound",
    "InvalidAssociationID.NotFound", "Gateway.NotAttached",
})
"""Codes that mean "the resource is not there (any more)", across the services the lab uses."""

DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
                    "UnrecognizedClientException", "InvalidClientTokenId"})
"""Codes that mean "the caller may not do this" (IAM), or "the caller is not known"."""


def error_code(exc: ClientError) -> str:
    code: str = exc.response.get("Error", {}).get("Code", "")
    return code


def is_gone(exc: ClientError) -> bool:
    return error_code(exc) in GONE


def access_denied(exc: ClientError, doing: str) -> AccessDenied:
    """A clear AccessDenied for ``doing`` (e.g. "reading the role order-app-lambda-role") from AWS's refusal."""
    error = exc.response.get("Error", {})
    operation = getattr(exc, "operation_name", "the call")
    return AccessDenied(f"AWS denied {doing} ({operation}): {error.get('Code')}: {error.get('Message')}",
                        "the identity labkit uses lacks this permission: grant it (see the message for the action "
                        "and resource), or run as the lab's administrator")


def if_exists(call: Callable[[], T], doing: str) -> T | None:
    """``call()``, or None when AWS answers that the resource is gone. A refusal raises AccessDenied, any
    other error propagates: "may not look" and "failed" are never read as "absent"."""
    try:
        return call()
    except ClientError as exc:
        if is_gone(exc):
            return None
        if error_code(exc) in DENIED:
            raise access_denied(exc, doing) from exc
        raise


def last_result(attempt: RetryCallState) -> Any:
    """A tenacity ``retry_error_callback``: when the retries stop, the last attempt's result (or its error,
    raised) instead of tenacity's RetryError."""
    assert attempt.outcome is not None  # tenacity calls it once an attempt has ended
    return attempt.outcome.result()
