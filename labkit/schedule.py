"""Step 13: the EventBridge rule that runs ``daily-delta-processor`` every 24 hours.

A rule made through the API reaches a Lambda only if the function's resource policy allows
``events.amazonaws.com`` for that rule; the console adds that permission silently, the API does not.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from labkit import functions, iam
from labkit.errors import if_exists
from labkit.names import rule_name
from labkit.schedule_expressions import longest_gap
from labkit.session import Lab
from labkit.tagging import error_code

__all__ = ["SCHEDULE", "create_schedule", "events_permission", "manual_window", "rule_name", "run_scheduled_report",
           "runs_at_least_daily", "schedule_frame", "scheduled_event"]

SCHEDULE = "rate(1 day)"


def create_schedule(lab: Lab) -> str:
    """The rule (ENABLED, every 24 hours), its target, and the Lambda permission for it; returns the rule ARN. A re-run
    keeps a schedule that runs at least daily (a student's every 12 hours, task 13), so it never undoes the task."""
    events, lam = lab.client("events"), lab.client("lambda")
    fn_arn = lam.get_function(FunctionName=iam.REPORT_FUNCTION)["Configuration"]["FunctionArn"]
    rule_arn = events.put_rule(Name=rule_name(lab), ScheduleExpression=_kept_schedule(events, lab), State="ENABLED",
                               Description="Orders Lab: the daily delta report", Tags=lab.tags)["RuleArn"]
    events.put_targets(Rule=rule_name(lab), Targets=[{"Id": iam.REPORT_FUNCTION, "Arn": fn_arn}])
    if events_permission(lab, rule_arn):  # a re-run adds no second statement
        return rule_arn
    try:
        lam.add_permission(FunctionName=iam.REPORT_FUNCTION, StatementId=f"{rule_name(lab)}-invoke",
                           Action="lambda:InvokeFunction", Principal="events.amazonaws.com", SourceArn=rule_arn)
    except ClientError as exc:
        if error_code(exc) != "ResourceConflictException":
            raise
    return rule_arn


def _kept_schedule(events: Any, lab: Lab) -> str:
    """The rule's schedule on a re-run: one that runs at least daily stays (task 13's every 12 hours); anything else,
    or no rule yet, is SCHEDULE."""
    try:
        current = events.describe_rule(Name=rule_name(lab)).get("ScheduleExpression")
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        return SCHEDULE
    return current if current and runs_at_least_daily(current) else SCHEDULE


def runs_at_least_daily(expression: str | None, after: dt.datetime | None = None) -> bool:
    """Whether a schedule runs at least once every 24 hours, judged by the instants it fires at over the coming
    year (from ``after``, default now): the report covers the 24 hours before each run, so a shorter spacing, such
    as step 13's "your turn" ``rate(12 hours)`` or ``cron(0 0/12 * * ? *)``, misses no order."""
    if not expression:
        return False
    gap = longest_gap(expression, after or dt.datetime.now(dt.timezone.utc))
    return gap is not None and dt.timedelta(0) < gap <= dt.timedelta(hours=24)


def scheduled_event(lab: Lab, rule_arn: str, when: dt.datetime) -> dict:
    """The event EventBridge sends for a scheduled rule."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": lab.account_id, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": lab.region,
            "resources": [rule_arn], "detail": {}}


def manual_window(lab: Lab, hours: float = 24) -> dict:
    """A manual report event for the last ``hours`` up to the cloud's now (the lab clock locally), in whole seconds."""
    now = dt.datetime.fromisoformat(lab.target.lab_time()).astimezone(dt.timezone.utc)
    end = now.replace(microsecond=0) + dt.timedelta(seconds=1)
    start = end - dt.timedelta(hours=hours)
    return {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}


def run_scheduled_report(lab: Lab, hours: float = 24) -> pd.DataFrame:
    """Let the schedule run: on the local cloud the lab clock moves ``hours`` ahead and the rule fires at each
    due instant; on AWS (whose clock cannot move) the function gets the event the rule would send now."""
    rule_arn = lab.client("events").describe_rule(Name=rule_name(lab))["Arn"]

    def invoke_now() -> dict:
        event = scheduled_event(lab, rule_arn, dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
        result = functions.invoke(lab, iam.REPORT_FUNCTION, event)
        return {"time": event["time"], "status": "function_error" if result.function_error else "ok",
                "result": json.dumps(result.payload)}

    firings = lab.target.fire_schedule(rule_arn, hours, invoke_now)
    rows = []
    for firing in firings:
        result = firing.get("result")
        try:
            parsed = json.loads(result) if result else {}
        except ValueError:
            parsed = {}
        parsed = parsed if isinstance(parsed, dict) else {}
        rows.append({"time": firing["time"], "status": firing["status"], "key": parsed.get("key"),
                     "rows": parsed.get("rows"), "total_amount": parsed.get("total_amount"),
                     "error": firing.get("error") or parsed.get("errorMessage")})
    return pd.DataFrame(rows, columns=["time", "status", "key", "rows", "total_amount", "error"])


def schedule_frame(lab: Lab) -> pd.DataFrame:
    events = lab.client("events")
    try:
        rule = events.describe_rule(Name=rule_name(lab))
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return pd.DataFrame(columns=["rule", "schedule", "state", "target", "permission"])
        raise
    targets = events.list_targets_by_rule(Rule=rule_name(lab))["Targets"]
    return pd.DataFrame([{"rule": rule["Name"], "schedule": rule["ScheduleExpression"], "state": rule["State"],
                          "target": ", ".join(t["Arn"].rsplit(":", 1)[-1] for t in targets),
                          "permission": events_permission(lab, rule["Arn"])}])


def events_permission(lab: Lab, rule_arn: str) -> bool:
    text = if_exists(lambda: lab.client("lambda").get_policy(FunctionName=iam.REPORT_FUNCTION)["Policy"],
                     f"reading the resource policy of {iam.REPORT_FUNCTION}")
    if text is None:
        return False
    policy = json.loads(text)
    for statement in policy.get("Statement", []):
        principal = statement.get("Principal", {})
        service = principal.get("Service") if isinstance(principal, dict) else principal
        source = json.dumps(statement.get("Condition", {}))
        if service == "events.amazonaws.com" and rule_arn in source:
            return True
    return False
