"""Parameters refused as AWS refuses them: one layer, for every service, before moto sees a request.

AWS validates every parameter on its servers; boto3 checks only required members, types and minimums on the
client (a student's ``parameter_validation=False``, the AWS CLI or a hand-made request skip even that). This
layer does the server's part in two ways:

* **From botocore's service models**, for the services whose front end validates generically (the JSON and
  rest-JSON services: Lambda, EventBridge, CloudWatch Logs, Secrets Manager, SSM; and IAM and STS among the query
  services): ``required``, ``min``/``max`` (lengths of strings, lists and maps; values of numbers), ``pattern``
  (matched against the whole value) and ``enum``, answered with AWS's own text::

      1 validation error detected: Value '901' at 'timeout' failed to satisfy constraint:
      Member must have value less than or equal to 900

  (code ``ValidationException``; ``ValidationError`` for IAM and STS, ``InvalidParameterException`` for Logs).
  EC2, RDS and S3 have no such front end on AWS (they answer per parameter), so they get only rules.
* **Rules**: what AWS enforces and the model does not say (Lambda's memory and timeout limits, S3's bucket names,
  RDS's master password), or says differently (a model constraint AWS does not check as written). Each service
  package declares them in its ``validation.py`` (:class:`Rule`, :class:`Adjust`), next to its service; the daemon
  is given them all (:mod:`labkit.localcloud.server`).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import regex
from werkzeug.wrappers import Response

from labkit.localcloud.core.errors import AwsError
from labkit.localcloud.core.services import ApiRequest, CloudContext, Service
from labkit.localcloud.core.shapes import MISSING, input_shape, request_input

log = logging.getLogger("labkit.localcloud.validation")
MODEL_VALIDATED = {"json", "rest-json"}  # protocols whose services validate from their model on AWS
MODEL_VALIDATED_QUERY = {"iam", "sts"}  # query services that do too (Coral); EC2, RDS and S3 do not
ERROR_CODES = {"iam": "ValidationError", "sts": "ValidationError", "logs": "InvalidParameterException"}
# Java's surrogate-pair ranges in the models' patterns, as the code points a Python string holds
SURROGATES = (r"\uD800\uDC00-\uDBFF\uDFFF", r"\U00010000-\U0010FFFF")


@dataclass(frozen=True)
class Rule:
    """A check of ``operations`` of ``service`` (botocore's name) that the model does not carry. ``check`` gets the
    request's input (model names, :func:`.shapes.request_input`; None for S3) and the request, and raises the
    :class:`AwsError` AWS answers with."""

    service: str
    operations: frozenset[str]
    check: Callable[[dict[str, Any] | None, ApiRequest], None]


@dataclass(frozen=True)
class Adjust:
    """A model constraint AWS enforces otherwise: ``member`` (a member name, in any operation of ``service``) gets
    ``constraints`` instead of the model's (e.g. ``{"max": 10240}``), or none at all when ``constraints`` is None
    (a rule checks it)."""

    service: str
    member: str
    constraints: Mapping[str, Any] | None = None


RuleList = Callable[[], Iterable["Rule | Adjust"]]


class ValidationFailed(AwsError):
    """The model-driven validation's answer; its code depends on the service (see :data:`ERROR_CODES`)."""

    error_code = "ValidationException"


@dataclass
class _Check:
    adjust: Mapping[str, Mapping[str, Any] | None]
    errors: list[str] = field(default_factory=list)


def _java(value: Any) -> str:
    """A value as AWS's (Java) front end prints it in a validation message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_java(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java(v)}" for k, v in value.items()) + "}"
    return str(value)


@lru_cache(maxsize=2048)
def _pattern(text: str) -> Any:
    """The model's (Java) pattern compiled for a whole-value match; None when it cannot be read here."""
    try:
        return regex.compile(text.replace(*SURROGATES))
    except regex.error:
        log.warning("a model pattern the validation cannot compile is not checked: %r", text)
        return None


def _constraints(shape: Any, adjust: Mapping[str, Mapping[str, Any] | None], name: str) -> Mapping[str, Any]:
    if name in adjust:
        return adjust[name] or {}
    return {k: v for k, v in shape.metadata.items() if k in ("min", "max", "pattern", "enum")}


def _failures(kind: str, value: Any, limits: Mapping[str, Any]) -> list[str]:
    """What ``value`` (a scalar, or a list/map's length) fails of ``limits``, in AWS's words."""
    found = []
    if kind == "string" and isinstance(value, str):
        if "enum" in limits and value not in limits["enum"]:
            found.append(f"Member must satisfy enum value set: [{', '.join(limits['enum'])}]")
        pattern = _pattern(limits["pattern"]) if "pattern" in limits else None
        if pattern is not None and pattern.fullmatch(value) is None:
            found.append(f"Member must satisfy regular expression pattern: {limits['pattern']}")
    sized = kind in ("string", "list", "map", "blob")
    measure = len(value) if sized and hasattr(value, "__len__") else value
    if not isinstance(measure, (int, float)) or isinstance(measure, bool):
        return found
    word = "length" if sized else "value"
    if "max" in limits and measure > limits["max"]:
        found.append(f"Member must have {word} less than or equal to {limits['max']}")
    if "min" in limits and measure < limits["min"]:
        found.append(f"Member must have {word} greater than or equal to {limits['min']}")
    return found


def _described(kind: str, limits: Mapping[str, Any]) -> list[str]:
    """Every constraint of an element shape, as AWS lists them for a list or map whose elements fail."""
    word = "length" if kind in ("string", "list", "map", "blob") else "value"
    texts = []
    if "max" in limits:
        texts.append(f"Member must have {word} less than or equal to {limits['max']}")
    if "min" in limits:
        texts.append(f"Member must have {word} greater than or equal to {limits['min']}")
    if "pattern" in limits:
        texts.append(f"Member must satisfy regular expression pattern: {limits['pattern']}")
    if "enum" in limits:
        texts.append(f"Member must satisfy enum value set: [{', '.join(limits['enum'])}]")
    return texts


def _walk(shape: Any, value: Any, path: str, name: str, check: _Check) -> None:
    kind = shape.type_name
    limits = _constraints(shape, check.adjust, name)
    for failure in _failures(kind, value, limits):
        check.errors.append(f"Value{_shown(shape, value)} at '{path}' failed to satisfy constraint: {failure}")
    if kind == "structure" and isinstance(value, dict):
        for member_name in shape.required_members:
            if value.get(member_name) is None:
                check.errors.append(f"Value null at '{_path(path, member_name)}' failed to satisfy constraint: "
                                    "Member must not be null")
        for member_name, member in shape.members.items():
            if value.get(member_name) is not None:
                _walk(member, value[member_name], _path(path, member_name), member_name, check)
    elif kind in ("list", "map") and isinstance(value, (list, dict)):
        element = shape.member if kind == "list" else shape.value
        items = list(enumerate(value, 1)) if isinstance(value, list) else list(value.items())
        if element.type_name in ("structure", "list", "map"):
            for index, item in items:
                if item is not None:
                    _walk(element, item, f"{path}.{index}.member" if kind == "list" else f"{path}.{index}",
                          element.name, check)
            return
        element_limits = _constraints(element, check.adjust, element.name)
        if any(_failures(element.type_name, item, element_limits) for _index, item in items):
            words = "Member must satisfy constraint" if kind == "list" else "Map value must satisfy constraint"
            check.errors.append(f"Value{_shown(shape, value)} at '{path}' failed to satisfy constraint: {words}: "
                                f"[{', '.join(_described(element.type_name, element_limits))}]")


def _shown(shape: Any, value: Any) -> str:
    """The value as a message shows it (a sensitive member's is not shown); made only for a failure: a PutLogEvents'
    events printed for every request that passes would cost more than the check."""
    return "" if shape.metadata.get("sensitive") else f" '{_java(value)}'"


def _path(parent: str, member: str) -> str:
    own = member[:1].lower() + member[1:]
    return f"{parent}.{own}" if parent else own


def validation_errors(shape: Any, given: Mapping[str, Any],
                      adjust: Mapping[str, Mapping[str, Any] | None] | None = None) -> list[str]:
    """Each failed constraint of ``given`` (an operation's input in model names) as AWS words it."""
    check = _Check(adjust or {})
    for member_name in shape.required_members:
        if given.get(member_name) is None:
            check.errors.append(f"Value null at '{_path('', member_name)}' failed to satisfy constraint: "
                                "Member must not be null")
    for member_name, member in shape.members.items():
        value = given.get(member_name, MISSING)
        if value is not MISSING and value is not None:
            _walk(member, value, _path("", member_name), member_name, check)
    return check.errors


def validation_message(errors: list[str]) -> str:
    count = len(errors)
    return f"{count} validation error{'s' if count != 1 else ''} detected: " + "; ".join(errors)


class ValidationService(Service):
    """The request hook: the model's constraints where the service validates from its model, then the rules."""

    name = "validation"

    def __init__(self, ctx: CloudContext, checks: Iterable[Rule | Adjust] = ()) -> None:
        self.ctx = ctx
        self.rules: dict[tuple[str, str], list[Rule]] = {}
        self.adjust: dict[str, dict[str, Mapping[str, Any] | None]] = {}
        for item in checks:
            if isinstance(item, Rule):
                for operation in item.operations:
                    self.rules.setdefault((item.service, operation), []).append(item)
            else:
                self.adjust.setdefault(item.service, {})[item.member] = item.constraints

    def on_request(self, call: ApiRequest) -> Response | None:
        classified = call.classified
        if classified is None or not classified.operation:
            return None
        service, operation, protocol = classified.service, classified.operation, classified.protocol
        rules = self.rules.get((service, operation), [])
        modelled = protocol in MODEL_VALIDATED or (protocol == "query" and service in MODEL_VALIDATED_QUERY)
        if not rules and not modelled:
            return None
        given = request_input(service, operation, protocol, classified.params, call.request.headers)
        if modelled and given is not None:
            errors = validation_errors(input_shape(service, operation), given, self.adjust.get(service))
            if errors:
                code = ERROR_CODES.get(service, ValidationFailed.error_code)
                return ValidationFailed(validation_message(errors), error_code=code).answer(protocol)
        for rule in rules:
            try:
                rule.check(given, call)
            except AwsError as error:
                return error.answer(protocol)
        return None
