"""IAM policy evaluation as AWS documents it: deny by default, an explicit deny wins, resources by ARN.

One evaluator, used twice (as :mod:`labkit.reachability` is for the network): the local cloud enforces every
request with it (:mod:`labkit.localcloud.iam.auth`), and labkit reads a role's policies with it on both targets
(:func:`labkit.iam.role_allows`: the least-privilege checks of step 12 and notebook 15). It is pure: no moto.

``evaluate(documents, action, resource, context)`` looks at every statement of every policy document
(identity policies: inline, customer managed and AWS managed alike) and answers ``ALLOW``,
``EXPLICIT_DENY`` or ``IMPLICIT_DENY``. Action names match case-insensitively, resources case-sensitively,
both with ``*`` and ``?`` wildcards; ``NotAction``/``NotResource`` and the common condition operators
(String*, Arn*, Bool, Null, Numeric*, with ``IfExists`` and ``ForAnyValue:``/``ForAllValues:``) are
supported. A condition on a key the request does not carry does not match, as on AWS.
"""
from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "allow", "explicit-deny", "implicit-deny"


@lru_cache(maxsize=4096)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE if ignore_case else 0)


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one character; nothing else is special."""
    if pattern == "*":
        return True
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    escaped = pattern.replace("[", "[[]")
    return _pattern(escaped, ignore_case).match(value) is not None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@lru_cache(maxsize=1024)
def parse(document: str) -> tuple[dict[str, Any], ...]:
    """The statements of a policy document (JSON text), parsed once per distinct text."""
    data = json.loads(document)
    return tuple(_as_list(data.get("Statement")))


def _matches_any(patterns: Iterable[str], value: str, ignore_case: bool) -> bool:
    return any(wildcard_match(str(p), value, ignore_case) for p in patterns)


def statement_applies(statement: Mapping[str, Any], action: str, resource: str,
                      context: Mapping[str, Any] | None = None) -> bool:
    """Whether ``statement`` covers ``action`` on ``resource`` under ``context`` (its effect aside)."""
    if "NotAction" in statement:
        if _matches_any(_as_list(statement["NotAction"]), action, True):
            return False
    elif not _matches_any(_as_list(statement.get("Action")), action, True):
        return False
    if "NotResource" in statement:
        if _matches_any(_as_list(statement["NotResource"]), resource, False):
            return False
    elif "Resource" in statement and not _matches_any(_as_list(statement["Resource"]), resource, False):
        return False
    return conditions_hold(statement.get("Condition") or {}, context or {})


def evaluate(documents: Iterable[str], action: str, resource: str,
             context: Mapping[str, Any] | None = None) -> str:
    """AWS's evaluation of identity policies for one request: ALLOW, EXPLICIT_DENY or IMPLICIT_DENY.

    A verdict depends on nothing but these arguments, so it is kept per distinct arguments: the same caller
    calling the same action on the same resource under the same policies (a web app's every Invoke) is judged
    once; a changed policy is another document, so another verdict."""
    texts = tuple(documents)
    try:
        frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (context or {}).items()))
        return _evaluate_once(texts, action, resource, frozen)
    except TypeError:  # a context value that cannot be a key: judged afresh
        return _evaluate(texts, action, resource, context)


@lru_cache(maxsize=1024)
def _evaluate_once(documents: tuple[str, ...], action: str, resource: str,
                   context: tuple[tuple[str, Any], ...]) -> str:
    return _evaluate(documents, action, resource, {k: list(v) if isinstance(v, tuple) else v for k, v in context})


def _evaluate(documents: Iterable[str], action: str, resource: str, context: Mapping[str, Any] | None) -> str:
    allowed = False
    for document in documents:
        for statement in parse(document):
            if not statement_applies(statement, action, resource, context):
                continue
            if statement.get("Effect") == "Deny":
                return EXPLICIT_DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


def allowed_by(documents: Iterable[str], action: str, resource: str,
               context: Mapping[str, Any] | None = None) -> bool:
    return evaluate(documents, action, resource, context) == ALLOW


# -- conditions ------------------------------------------------------------------------------------------
def _string_equals(values: list[str], wanted: list[str]) -> bool:
    return any(v == w for v in values for w in wanted)


def _string_equals_ic(values: list[str], wanted: list[str]) -> bool:
    return any(v.lower() == w.lower() for v in values for w in wanted)


def _string_like(values: list[str], wanted: list[str]) -> bool:
    return any(wildcard_match(w, v) for v in values for w in wanted)


def _numeric(compare: Any) -> Any:
    def check(values: list[str], wanted: list[str]) -> bool:
        try:
            return any(compare(float(v), float(w)) for v in values for w in wanted)
        except ValueError:
            return False
    return check


def _bool(values: list[str], wanted: list[str]) -> bool:
    return any(str(v).lower() == str(w).lower() for v in values for w in wanted)


POSITIVE = {
    "StringEquals": _string_equals, "StringEqualsIgnoreCase": _string_equals_ic, "StringLike": _string_like,
    "ArnEquals": _string_like, "ArnLike": _string_like, "Bool": _bool,
    "NumericEquals": _numeric(lambda a, b: a == b), "NumericLessThan": _numeric(lambda a, b: a < b),
    "NumericLessThanEquals": _numeric(lambda a, b: a <= b), "NumericGreaterThan": _numeric(lambda a, b: a > b),
    "NumericGreaterThanEquals": _numeric(lambda a, b: a >= b),
}
NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike",
           "NumericNotEquals": "NumericEquals"}


def _context_value(context: Mapping[str, Any], key: str) -> list[str] | None:
    for name, value in context.items():
        if name.lower() == key.lower():
            return [str(v) for v in _as_list(value)]
    return None


def _condition_holds(operator: str, key: str, wanted: list[str], context: Mapping[str, Any]) -> bool:
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    values = _context_value(context, key)
    if op == "Null":
        absent = values is None
        return any(str(w).lower() == ("true" if absent else "false") for w in wanted)
    if values is None:
        return if_exists or op in NEGATED
    if op in NEGATED:
        test = POSITIVE[NEGATED[op]]
        if qualifier == "ForAllValues":
            return all(not test([v], wanted) for v in values)
        return not test(values, wanted) if qualifier != "ForAnyValue" else any(not test([v], wanted) for v in values)
    test = POSITIVE.get(op)
    if test is None:  # an operator this model does not know never matches
        return False
    if qualifier == "ForAllValues":
        return all(test([v], wanted) for v in values)
    return bool(test(values, wanted))


def conditions_hold(condition: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """Every operator, every key within it must hold (AND); the values of one key are alternatives (OR)."""
    for operator, keys in condition.items():
        for key, wanted in (keys or {}).items():
            if not _condition_holds(operator, key, [str(w) for w in _as_list(wanted)], context):
                return False
    return True


def principal_matches(statement: Mapping[str, Any], kind: str, name: str) -> bool:
    """Whether a resource or trust policy statement names this principal (``kind`` is Service, AWS, ...)."""
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    return any(p == "*" or p == name for p in _as_list(principal.get(kind)))
