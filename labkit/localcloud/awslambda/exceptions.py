"""Lambda's errors the local cloud raises itself (moto raises the rest), with AWS's codes and statuses."""
from __future__ import annotations

from labkit.localcloud.core.errors import AwsError


class InvalidParameterValue(AwsError):
    """A parameter Lambda refuses (an execution role it cannot use, ...)."""

    error_code = "InvalidParameterValueException"


class ResourceConflict(AwsError):
    """The resource already holds what the request adds (AddPermission with a StatementId in use)."""

    error_code = "ResourceConflictException"
    code = 409


class TooManyRequests(AwsError):
    """The function's reserved concurrency is used up."""

    error_code = "TooManyRequestsException"
    code = 429

    def __init__(self) -> None:
        super().__init__("Rate Exceeded.", fields={"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"})


class InvalidRequestContent(AwsError):
    """An Invoke payload that is not strict JSON."""

    error_code = "InvalidRequestContentException"

    def __init__(self, detail: str) -> None:
        super().__init__(f"Could not parse request body into json: Could not parse payload into json: {detail}")


class InvalidRuntime(AwsError):
    """A runtime the local cloud cannot run."""

    error_code = "InvalidRuntimeException"

    def __init__(self, runtime: str) -> None:
        super().__init__(f"The local cloud runs Python zip functions only; this function's runtime is {runtime!r}.")


class ServiceError(AwsError):
    """The Lambda service itself failed to run the function (its runtime environment is missing)."""

    error_code = "ServiceException"
