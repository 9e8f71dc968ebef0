"""Secrets Manager's refusals in AWS's words (json protocol: ``{"__type": code, "message": text}``, HTTP 400).

moto raises these with botocore's own client-side prefix baked into the text ("An error occurred
(InvalidRequestException) when calling the DeleteSecret operation: You can't <16 spaces> use ..."), with another
text for a secret scheduled for deletion, and with ``ResourceExistsException`` for CreateSecret of a scheduled
name; :mod:`.patches` raises these instead.
"""
from __future__ import annotations

from labkit.localcloud.core.errors import AwsError

# Verified: LocalStack's snapshots recorded against AWS, and a Lambda's GetSecretValue quoted from a dead-letter queue.
MARKED_FOR_DELETION = "You can't perform this operation on the secret because it was marked for deletion."
NAME_SCHEDULED = "You can't create this secret because a secret with this name is already scheduled for deletion."
# Inferred (moto's and every emulator's text; the API reference says only "You can't use both ..."): see
# docs/localcloud.md's fidelity table.
BOTH_DELETE_OPTIONS = "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
RECOVERY_WINDOW = "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."


class InvalidRequest(AwsError):
    """The secret's state does not allow the request (scheduled for deletion, ...)."""

    error_code = "InvalidRequestException"


class InvalidParameter(AwsError):
    """A parameter's value Secrets Manager refuses (the model carries no such constraint)."""

    error_code = "InvalidParameterException"
