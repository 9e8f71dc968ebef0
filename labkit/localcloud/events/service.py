"""EventBridge schedules that fire on a lab clock.

The lab clock is real time plus an offset. A background thread fires every due instant of every
ENABLED scheduled rule; ``advance(seconds)`` moves the clock forward and fires each instant passed
over, in order, before it returns: the clock stops at each instant while its targets run, so the event's
``time``, the function's log lines, what it writes to S3 and its own clock all say that instant (moving
to the end first stamped every run's logs with the end). A Lambda target
runs only if its resource policy lets ``events.amazonaws.com`` invoke it for that rule, as on AWS;
a denied or failed delivery is kept in the history. Each firing publishes AWS's ``AWS/Events`` metrics (dimension
``RuleName``): ``TriggeredRules`` (the rule ran and matched), ``Invocations`` (one per target invoked, failed
deliveries included) and ``FailedInvocations`` (a delivery that failed permanently: the function is gone or its
policy does not let EventBridge invoke it). A function that ran and raised is *not* a failed invocation: EventBridge
invokes Lambda asynchronously, Lambda accepted the event, and the error counts in ``AWS/Lambda Errors``. As on AWS,
a metric is sent only when it is not zero.

EventBridge reads its rules and targets (ListRules, ListTargetsByRule, only when a schedule is due) and
publishes its metric through the public API with its own identity (:func:`.iam.principals.service_keys`);
moto tells it of a rule's schedule when the rule is put (:mod:`.patches`). The lab clock is the daemon's
(:class:`labkit.localcloud.core.clock.ClockService`); the schedule expressions are read in :mod:`.schedules`.

Schedules that fell due while the cloud was stopped (issue 23): on AWS the rule would have fired at each instant,
and it was the target (the lab's function, its database) that was down; EventBridge retries an event it cannot
deliver for the target's maximum event age (``RetryPolicy.MaximumEventAgeInSeconds``, 24 hours by default and at
most), then drops it. So at a start each missed instant younger than its target's maximum age is delivered late,
in order, with its own ``time``; older ones are dropped, and the schedule history says how many and why.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.models import lambda_backends
from werkzeug.wrappers import Request

from labkit import iam_policy
from labkit.localcloud.awslambda.service import LambdaService
from labkit.localcloud.cloudwatch.telemetry import Keys, Telemetry
from labkit.localcloud.core.clock import ClockService
from labkit.localcloud.core.services import CloudContext, Route, Service
from labkit.localcloud.events.schedules import next_after, scheduled_event, skip_older
from labkit.localcloud.iam.principals import service_keys

log = logging.getLogger("labkit.localcloud.events")
HISTORY_LIMIT = 1000
MAX_EVENT_AGE = 86400  # EventBridge's RetryPolicy.MaximumEventAgeInSeconds: its default, and its maximum
EVENTS_PRINCIPAL = "events.amazonaws.com"
EVENTS_ACTIONS = ("events:ListRules", "events:ListTargetsByRule", "cloudwatch:PutMetricData")
FAILED = ("failed", "denied")  # deliveries that failed permanently (a function that raised was delivered: "function_error")
# An advance stops at each due instant and waits there until every process of the lab reads it (up to a second);
# past this many stops in one advance (rate(1 minute) over a day) it moves on at once: the event's time and the
# log and S3 stamps are still the instant's, a function's own clock may lag by a stop.
SETTLED_STOPS = 60
Due = tuple[dt.datetime, Callable[[], list[dict[str, Any]]]]  # an instant, and what fires there (its records)


class DueSource(Protocol):
    """Another scheduler on the lab clock (EventBridge Scheduler's schedules, :mod:`.scheduler`): what it has due
    until an instant, each moved past as it is taken."""

    def take_due(self, until: dt.datetime) -> list[Due]: ...


@dataclass
class Schedule:
    expression: str
    next_due: dt.datetime


@dataclass(frozen=True)
class Rule:
    """A scheduled rule as ListRules describes it."""

    name: str
    arn: str
    state: str
    expression: str

    @property
    def region_name(self) -> str:
        return self.arn.split(":")[3]

    @property
    def account_id(self) -> str:
        return self.arn.split(":")[4]


def events_may_invoke(fn: Any, rule_arn: str) -> bool:
    """True when the function's resource policy allows EventBridge to invoke it for ``rule_arn``
    (statements for ``events.amazonaws.com``, their conditions on ``AWS:SourceArn``/``AWS:SourceAccount``;
    an explicit deny wins)."""
    context = {"aws:SourceArn": rule_arn, "aws:SourceAccount": rule_arn.split(":")[4]}
    allowed = False
    for statement in fn.policy.statements:
        if not iam_policy.principal_matches(statement, "Service", "events.amazonaws.com"):
            continue
        if not iam_policy.statement_applies(statement, "lambda:InvokeFunction", fn.function_arn, context):
            continue
        if statement.get("Effect", "Allow") == "Deny":
            return False
        allowed = True
    return allowed


class EventsService(Service):
    """EventBridge's scheduled rules firing on the lab clock; Lambda targets run through the ``lambda`` service."""

    name = "events"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.clock = ctx.services.require(ClockService).clock
        self.schedules: dict[str, Schedule] = {}
        self.history: list[dict[str, Any]] = []
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._came_back: dt.datetime | None = None  # lab time of a restart: instants before it were missed
        self.sources: list[DueSource] = []
        keys = service_keys(EVENTS_PRINCIPAL, EVENTS_ACTIONS)
        self._own_keys = Keys(keys.access_key_id, keys.secret_access_key, service_own=True)

    def routes(self) -> list[tuple[str, str, Route]]:
        return [("POST", "/_labkit/clock/advance", self._advance_route),
                ("GET", "/_labkit/schedule/history", lambda _r: {"firings": self.history[-200:]})]

    def start(self) -> None:
        self._start_loop()

    # -- what a restart keeps (issue 23) ----------------------------------------------------------------
    def save_state(self) -> dict[str, Any]:
        schedules = dict(self.schedules)  # a copy without the lock, which a firing holds while its target runs
        return {"schedules": {arn: [s.expression, s.next_due.isoformat()] for arn, s in schedules.items()},
                "history": list(self.history)[-HISTORY_LIMIT:]}

    def load_state(self, saved: dict[str, Any] | None, restored: bool) -> None:
        """Each rule keeps its anchor; instants older than the maximum event age are dropped now (the younger ones
        are delivered by the loop, late, each with its own time)."""
        if not saved or not restored:
            return
        self.schedules = {arn: Schedule(expression, dt.datetime.fromisoformat(due))
                          for arn, (expression, due) in saved.get("schedules", {}).items()}
        self.history = list(saved.get("history", []))
        self._came_back = now = self.clock.now()
        for arn, schedule in self.schedules.items():
            first = schedule.next_due
            schedule.next_due, dropped = skip_older(schedule.expression, first, now - dt.timedelta(seconds=MAX_EVENT_AGE))
            if dropped:
                self.history.append({
                    "rule": arn.rsplit("/", 1)[-1], "rule_arn": arn, "time": first.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "target": None, "status": "dropped",
                    "error": f"{dropped} scheduled event(s) fell due while the local cloud was stopped and are older "
                             "than EventBridge's maximum event age (24 hours): dropped, as EventBridge drops an event "
                             "it could not deliver in that time"})

    def _start_loop(self) -> None:
        self._stop = threading.Event()
        threading.Thread(target=self._loop, args=(self._stop,), daemon=True, name="events-scheduler").start()

    def summary(self) -> dict[str, Any]:
        return {"rules": len(self.schedules), "firings": len(self.history)}

    def add_source(self, source: DueSource) -> None:
        """Fire ``source``'s instants with the rules' (in order, on the advance's stops, and in the loop)."""
        self.sources.append(source)

    def register(self, rule: Any) -> None:
        """Anchor a rule's schedule at the current lab time (kept when its expression is unchanged)."""
        with self.lock:
            current = self.schedules.get(rule.arn)
            if rule.scheduled_expression and (not current or current.expression != rule.scheduled_expression):
                self.schedules[rule.arn] = Schedule(rule.scheduled_expression,
                                                    next_after(rule.scheduled_expression, self.clock.now()))
            elif not rule.scheduled_expression:
                self.schedules.pop(rule.arn, None)
        self.ctx.state.changed(self.name)

    def _advance_route(self, request: Request) -> dict[str, Any]:
        body = request.get_json(silent=True) or {}
        return self.advance(float(body.get("seconds", 0)))

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the lab clock forward by ``seconds``, stopping at each due instant to fire it there; return the
        firings. The offset grows by exactly ``seconds``; what fell due in the real time the firings took is
        fired at the end."""
        with self.lock:
            until = self.clock.now() + dt.timedelta(seconds=seconds)
            due = self._take_all(until)
            instants = sorted({instant for instant, _ in due})
            settle = len(instants) <= SETTLED_STOPS
            firings: list[dict[str, Any]] = []
            moved, stops = 0.0, 0
            while due:
                instant = due[0][0]
                step = min(seconds - moved, max(0.0, (instant - self.clock.now()).total_seconds()))
                if step > 0:
                    stops += 1  # (retries put on the clock during the advance count too)
                    settle = settle and stops <= SETTLED_STOPS
                    # settled: returns once every lab process reads it; a source's firing that may run nothing
                    # (``settles = False``: a Scheduler attempt whose role may not invoke) settles itself if it runs
                    wanted = any(getattr(fire, "settles", True) for when, fire in due if when == instant)
                    self.clock.advance(step, settle=settle and wanted)
                    moved += step
                firings += [f for when, fire in due if when == instant for f in fire()]
                # what a firing put on the clock within the advance (a retry) is due in it too
                due = sorted([d for d in due if d[0] != instant] + self._take_all(until), key=lambda d: d[0])
            if seconds - moved > 0 or not instants:
                self.clock.advance(seconds - moved)
            firings += self.fire_due(self.clock.now())
        self.ctx.state.changed(ClockService.name)
        self.ctx.state.commit()  # the answer says the clock moved: kept before it leaves
        return {**self.clock.info(), "firings": firings}

    def _take_due(self, until: dt.datetime) -> list[tuple[dt.datetime, Rule]]:
        """Every (instant, rule) of an ENABLED rule due until ``until``, in order; each schedule moves past them."""
        with self.lock:
            due: list[tuple[dt.datetime, Rule]] = []
            for rule in self._due_rules(until):
                schedule = self.schedules.get(rule.arn)
                if schedule is None or schedule.expression != rule.expression:
                    continue
                while schedule.next_due <= until:
                    if rule.state == "ENABLED":
                        due.append((schedule.next_due, rule))
                    schedule.next_due = next_after(schedule.expression, schedule.next_due)
            due.sort(key=lambda item: item[0])
            if due:
                self.ctx.state.changed(self.name)
            return due

    def _take_all(self, until: dt.datetime) -> list[Due]:
        """What the rules and every other source have due until ``until``, in order (a stable sort: a source's
        own order within an instant is kept)."""
        due: list[Due] = [(instant, functools.partial(self._fire, rule, instant))
                          for instant, rule in self._take_due(until)]
        for source in self.sources:
            due += source.take_due(until)
        return sorted(due, key=lambda item: item[0])

    def fire_due(self, until: dt.datetime) -> list[dict[str, Any]]:
        with self.lock:
            return [f for _instant, fire in self._take_all(until) for f in fire()]

    def _client(self, service: str, region: str) -> Any:
        return self.ctx.services.require(Telemetry).client(self._own_keys, service, region)

    def _due_rules(self, until: dt.datetime) -> list[Rule]:
        """The rules of every region where a schedule is due, read with ListRules (nothing is asked while
        nothing is due); a schedule whose rule is gone is forgotten."""
        regions = {arn.split(":")[3] for arn, schedule in self.schedules.items() if schedule.next_due <= until}
        rules: list[Rule] = []
        for region in sorted(regions):
            listed = [Rule(r["Name"], r["Arn"], r.get("State", ""), r["ScheduleExpression"])
                      for page in self._client("events", region).get_paginator("list_rules").paginate()
                      for r in page["Rules"] if r.get("ScheduleExpression")]
            live = {rule.arn for rule in listed}
            for arn in [a for a in self.schedules if a.split(":")[3] == region and a not in live]:
                del self.schedules[arn]
            rules += listed
        return rules

    def _fire(self, rule: Rule, instant: dt.datetime) -> list[dict[str, Any]]:
        results = []
        targets = [t for page in self._client("events", rule.region_name).get_paginator("list_targets_by_rule")
                   .paginate(Rule=rule.name) for t in page["Targets"]]
        self._count(rule, "TriggeredRules")
        for target in targets:
            record = {"rule": rule.name, "rule_arn": rule.arn, "time": instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "target": target.get("Arn")}
            too_old = self._too_old(target, instant)
            try:
                record.update(too_old or self._deliver(rule, target, instant))
            except Exception as exc:  # a bug in delivery: recorded and logged, never reported as the target's fault
                log.exception("delivering %s to %s failed", rule.name, target.get("Arn"))
                record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            if record["status"] != "skipped":
                self._count(rule, "Invocations")
            if record["status"] in FAILED:
                log.warning("rule %s could not deliver to %s: %s", rule.name, target.get("Arn"), record.get("error"))
                self._count(rule, "FailedInvocations")
            self.history.append(record)
            del self.history[:-HISTORY_LIMIT]
            results.append(record)
        return results

    def _too_old(self, target: dict[str, Any], instant: dt.datetime) -> dict[str, Any] | None:
        """An instant missed while the cloud was stopped, older than the target's maximum event age: dropped."""
        if self._came_back is None or instant >= self._came_back:
            return None
        limit = (target.get("RetryPolicy") or {}).get("MaximumEventAgeInSeconds") or MAX_EVENT_AGE
        age = (self._came_back - instant).total_seconds()
        if age <= float(limit):
            return None
        return {"status": "dropped", "error": f"fell due while the local cloud was stopped, {age:.0f} s before it "
                f"came back: older than the target's maximum event age ({limit:.0f} s), so EventBridge drops it"}

    def _deliver(self, rule: Rule, target: dict[str, Any], instant: dt.datetime) -> dict[str, Any]:
        arn = target.get("Arn", "")
        if ":lambda:" not in arn:
            return {"status": "skipped", "error": "the local cloud delivers scheduled events to Lambda targets only"}
        try:
            fn = lambda_backends[rule.account_id][rule.region_name].get_function(arn)
        except UnknownFunctionException:
            return {"status": "failed", "error": f"target function {arn} does not exist"}
        if not events_may_invoke(fn, rule.arn):
            return {"status": "denied", "error": (
                "the function's resource policy does not allow events.amazonaws.com to invoke it for this rule "
                "(add it with lambda.add_permission, SourceArn = the rule's ARN)")}
        payload = target.get("Input") or json.dumps(scheduled_event(rule, instant))
        inv = self.ctx.services.require(LambdaService).run(fn, payload.encode())
        result = (inv.result or b"").decode(errors="replace")
        return {"status": "ok" if not inv.error_type else "function_error", "request_id": inv.request_id,
                "function_error": inv.error_type, "result": result[:1000]}

    def _count(self, rule: Rule, metric: str) -> None:
        """One ``AWS/Events`` data point of ``metric`` for ``rule``, published with EventBridge's own identity."""
        self.ctx.services.require(Telemetry).metric(self._own_keys, rule.region_name, "AWS/Events", {
            "MetricName": metric, "Value": 1.0, "Unit": "Count",
            "Dimensions": [{"Name": "RuleName", "Value": rule.name}],
            "Timestamp": self.clock.now()})

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            try:
                self.fire_due(self.clock.now())
            except Exception:
                log.exception("scheduler tick failed")

    def stop_all(self) -> None:
        self._stop.set()

    def after_reset(self) -> None:
        with self.lock:
            self.schedules.clear()
            self.history.clear()
        self._start_loop()
