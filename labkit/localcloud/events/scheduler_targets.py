"""What EventBridge Scheduler checks and sends when a schedule invokes its target (:mod:`.scheduler` decides when).

Scheduler calls the target's API as the schedule's *execution role* (``Target.RoleArn``): it assumes the role as
``scheduler.amazonaws.com`` (the role's trust policy must allow that principal, with its conditions on
``aws:SourceAccount`` and ``aws:SourceArn``, the schedule group's ARN), then the role's identity policies must
allow the target's action (``lambda:InvokeFunction`` on the function). A Lambda function is invoked
asynchronously: once Lambda has accepted the event the invocation succeeded, whatever the function does then
(its own errors are Lambda's: ``AWS/Lambda Errors``).

The payload is ``Target.Input`` with Scheduler's context attributes replaced (``<aws.scheduler.schedule-arn>``,
``<aws.scheduler.scheduled-time>``, ``<aws.scheduler.execution-id>``, ``<aws.scheduler.attempt-number>``); without
an Input, Scheduler "delivers a default notification": for a Lambda function the local cloud sends ``{}``, an
empty JSON object (the documentation does not show the notification's shape).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from moto.iam.exceptions import NotFoundException as RoleNotFound

from labkit import iam_policy
from labkit.localcloud.iam.principals import data_plane_role, role_documents

SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"
DEFAULT_INPUT = "{}"
STAMP = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Failure:
    """A delivery that failed: the error code and message the target's API (or STS) answered."""

    code: str
    message: str


def group_arn(schedule_arn: str) -> str:
    """``arn:aws:scheduler:region:account:schedule/group/name`` -> the group's ARN."""
    head, _, path = schedule_arn.partition(":schedule/")
    return f"{head}:schedule-group/{path.split('/')[0]}"


def scheduler_may_assume(role: Any, schedule_arn: str) -> bool:
    """Whether the role's trust policy lets ``scheduler.amazonaws.com`` assume it for this schedule (an explicit
    deny wins; conditions read ``aws:SourceAccount`` and ``aws:SourceArn``, the schedule group's ARN)."""
    context = {"aws:SourceAccount": schedule_arn.split(":")[4], "aws:SourceArn": group_arn(schedule_arn),
               "aws:PrincipalServiceName": SCHEDULER_PRINCIPAL}
    allowed = False
    for statement in iam_policy.parse(role.assume_role_policy_document):
        if not iam_policy.principal_matches(statement, "Service", SCHEDULER_PRINCIPAL):
            continue
        if not iam_policy.statement_applies(statement, "sts:AssumeRole", role.arn, context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = statement.get("Effect") == "Allow" or allowed
    return allowed


def authorize(role_arn: str, schedule_arn: str, action: str, resource: str, execution_id: str) -> Failure | None:
    """None when Scheduler may assume ``role_arn`` and the role may call ``action`` on ``resource``; else the
    failure AWS reports (the role as IAM sees it now, realistic mode included)."""
    try:
        role = data_plane_role(role_arn)
    except RoleNotFound:
        return Failure("AccessDeniedException", f"EventBridge Scheduler could not assume the execution role "
                       f"{role_arn}: the role does not exist")
    if not scheduler_may_assume(role, schedule_arn):
        return Failure("AccessDeniedException", f"EventBridge Scheduler could not assume the execution role "
                       f"{role_arn}: its trust policy does not allow {SCHEDULER_PRINCIPAL} to call sts:AssumeRole "
                       "(for this schedule's account and group)")
    account = role_arn.split(":")[4]
    session = f"arn:aws:sts::{account}:assumed-role/{role.name}/{execution_id}"
    context = {"aws:PrincipalArn": role.arn, "aws:PrincipalAccount": account,
               "aws:RequestedRegion": resource.split(":")[3] if resource.count(":") > 3 else ""}
    verdict = iam_policy.evaluate(role_documents(role.name), action, resource, context)
    if verdict != iam_policy.ALLOW:
        why = "an explicit deny in an identity-based policy" if verdict == iam_policy.EXPLICIT_DENY \
            else "no identity-based policy allows the " + action + " action"
        return Failure("AccessDeniedException", f"User: {session} is not authorized to perform: {action} on "
                       f"resource: {resource} because {why}")
    return None


def payload(target: dict[str, Any], schedule_arn: str, instant: dt.datetime, execution_id: str, attempt: int) -> str:
    """``Target.Input`` with the context attributes filled in; the default notification without one."""
    text = target.get("Input")
    if text is None or text == "":
        return DEFAULT_INPUT
    for name, value in (("schedule-arn", schedule_arn), ("scheduled-time", instant.strftime(STAMP)),
                        ("execution-id", execution_id), ("attempt-number", str(attempt))):
        text = text.replace(f"<aws.scheduler.{name}>", value)
    return str(text)


def dead_letter(target: dict[str, Any], schedule_arn: str, instant: dt.datetime, execution_id: str, attempts: int,
                failure: Failure, exhausted: str) -> tuple[str, dict[str, dict[str, str]]]:
    """The dead-letter event: the payload that could not be delivered, and message attributes saying why."""
    body = payload(target, schedule_arn, instant, execution_id, attempts)
    attributes = {"ERROR_CODE": failure.code, "ERROR_MESSAGE": failure.message[:1000],
                  "EXHAUSTED_RETRY_CONDITION": exhausted, "RETRY_ATTEMPTS": str(max(0, attempts - 1)),
                  "SCHEDULE_ARN": schedule_arn, "TARGET_ARN": str(target.get("Arn", "")),
                  "INVOCATION_ID": execution_id, "SCHEDULED_TIME": instant.strftime(STAMP)}
    return body, {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}

