"""What Lambda refuses that its model does not say: the limits of a standard function, its name, its runtime.

The model allows what Lambda Managed Instances allow (MemorySize up to 32,768, Timeout up to 5,400); a standard
function takes 128-10,240 MB and 1-900 s ("You can configure a Lambda function to use between 128 MB and
10,240 MB"; Timeout: "The maximum allowed value is 900 seconds"), with the same generic message AWS gives. A plain
function name is at most 64 characters (the model's 140 is for an ARN). Runtimes follow AWS's lifecycle
(:data:`RUNTIMES`, read against the lab clock): a runtime whose "block create" date has passed is refused on
CreateFunction, one whose "block update" date has passed on UpdateFunctionConfiguration naming it; an unknown one
with the list AWS accepts.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from labkit.localcloud.awslambda.exceptions import InvalidParameterValue
from labkit.localcloud.core.clock import ClockService
from labkit.localcloud.core.patches import find
from labkit.localcloud.core.services import ApiRequest
from labkit.localcloud.core.validation import Adjust, Rule, validation_message

# AWS's runtime lifecycle for the runtimes a lab can name: (deprecated, block create, block update), from the
# "Lambda runtimes" page (deprecation table) as of 2026-06; None: no date announced. Runtimes not listed are
# refused as unknown, with the list of AWS's creatable runtimes (RUNTIMES' keys less the blocked ones, plus the
# other languages' current runtimes, which the local cloud cannot run: InvalidRuntimeException at invoke).
RUNTIMES: dict[str, tuple[str | None, str | None, str | None]] = {
    "python2.7": ("2021-07-15", "2021-07-15", "2022-05-30"),
    "python3.6": ("2022-07-18", "2022-07-18", "2022-08-29"),
    "python3.7": ("2023-12-04", "2024-01-09", "2027-03-03"),
    "python3.8": ("2024-10-14", "2027-02-01", "2027-03-03"),
    "python3.9": ("2025-12-15", "2027-02-01", "2027-03-03"),
    "python3.10": ("2026-10-31", "2027-02-01", "2027-03-03"),
    "python3.11": ("2027-06-30", "2027-07-31", "2027-08-31"),
    "python3.12": ("2028-10-31", "2028-11-30", "2029-01-10"),
    "python3.13": ("2029-06-30", "2029-07-31", "2029-08-31"),
    "python3.14": ("2029-06-30", "2029-07-31", "2029-08-31"),
}
OTHER_RUNTIMES = ("nodejs20.x", "nodejs22.x", "nodejs24.x", "java21", "java17", "java11", "java8.al2", "java25",
                  "dotnet8", "dotnet10", "ruby3.3", "ruby3.4", "provided.al2023", "provided.al2")
NAME_MAX = 64
NAME = r"[a-zA-Z0-9-_]+"


def _lab_date() -> dt.date:
    clock = find(ClockService)
    return (clock.clock.now() if clock is not None else dt.datetime.now(dt.timezone.utc)).date()


def _passed(day: str | None) -> bool:
    return day is not None and _lab_date() >= dt.date.fromisoformat(day)


def check_runtime(runtime: str, creating: bool) -> None:
    """Refuse ``runtime`` as Lambda does on a create (``creating``) or an update naming it."""
    if runtime.startswith("arn:"):
        return
    dates = RUNTIMES.get(runtime)
    if dates is None and runtime not in OTHER_RUNTIMES:
        accepted = [r for r, (_d, create, _u) in RUNTIMES.items() if not _passed(create)] + list(OTHER_RUNTIMES)
        raise InvalidParameterValue(f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy "
                                    f"enum value set: [{', '.join(accepted)}] or be a valid ARN")
    if dates is not None and _passed(dates[1] if creating else dates[2]):
        raise InvalidParameterValue(f"The runtime parameter of {runtime} is no longer supported for creating or "
                                    "updating AWS Lambda functions. We recommend you use a supported runtime while "
                                    "creating or updating functions.")


def _create(given: dict[str, Any] | None, _call: ApiRequest) -> None:
    given = given or {}
    name = given.get("FunctionName")
    if isinstance(name, str) and not name.startswith("arn:"):
        errors = []
        if len(name) > NAME_MAX:
            errors.append(f"Value '{name}' at 'functionName' failed to satisfy constraint: Member must have length "
                          f"less than or equal to {NAME_MAX}")
        if re.fullmatch(NAME, name) is None:
            errors.append(f"Value '{name}' at 'functionName' failed to satisfy constraint: Member must satisfy "
                          f"regular expression pattern: {NAME}")
        if errors:
            raise InvalidParameterValue(validation_message(errors))
    if isinstance(given.get("Runtime"), str):
        check_runtime(given["Runtime"], creating=True)


def _update(given: dict[str, Any] | None, _call: ApiRequest) -> None:
    if given and isinstance(given.get("Runtime"), str):
        check_runtime(given["Runtime"], creating=False)


def rules() -> Iterable[Rule | Adjust]:
    """Lambda's rules and the model constraints it enforces otherwise."""
    return [Adjust("lambda", "MemorySize", {"min": 128, "max": 10240}),
            Adjust("lambda", "Timeout", {"min": 1, "max": 900}),
            Adjust("lambda", "FunctionName", None), Adjust("lambda", "Runtime", None),
            Rule("lambda", frozenset({"CreateFunction"}), _create),
            Rule("lambda", frozenset({"UpdateFunctionConfiguration"}), _update)]
