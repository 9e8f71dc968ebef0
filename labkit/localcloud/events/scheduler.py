"""EventBridge Scheduler's schedules firing on the lab clock, beside EventBridge's scheduled rules.

moto keeps the schedules (``scheduler``: CreateSchedule, UpdateSchedule, GetSchedule, DeleteSchedule, ...); this
service knows when each is next due (:mod:`.scheduler_times`) and invokes its target when it is, as AWS does:

* ``rate()``, ``cron()`` in ``ScheduleExpressionTimezone`` and one-time ``at()`` schedules; a ``DISABLED`` schedule
  passes its instants without firing; nothing fires before ``StartDate`` or after ``EndDate``; once a schedule has
  fired for the last time (its ``at()``, or the last instant before its EndDate), ``ActionAfterCompletion=DELETE``
  deletes it, ``NONE`` keeps it.
* ``FlexibleTimeWindow``: ``OFF`` fires at the instant; ``FLEXIBLE`` may fire anywhere within the window on AWS,
  and here always at its start (deterministic, so a lesson's output is the same every run).
* The target is invoked with the schedule's execution role (:mod:`.scheduler_targets`): Lambda functions, the
  lab's case; another target is recorded as ``skipped`` (the local cloud does not deliver it).
* A failed delivery (the role cannot be assumed or may not invoke the function, the function is missing) is retried
  per ``Target.RetryPolicy`` on the lab clock, after 1, 2, 4 ... minutes (at most 10 minutes apart: a
  deterministic backoff; AWS's own is exponential with jitter), while the attempts left
  (``MaximumRetryAttempts``) and the event's age (``MaximumEventAgeInSeconds``) allow; then it is dropped, or
  sent to ``Target.DeadLetterConfig``'s SQS queue when the execution role may ``sqs:SendMessage`` there.
* CloudWatch metrics in ``AWS/Scheduler`` (account-wide and per ``ScheduleGroup``), published with Scheduler's own
  identity, sent only when not zero: ``InvocationAttemptCount``, ``TargetErrorCount``,
  ``InvocationDroppedCount``, ``InvocationsSentToDeadLetterCount``, ``InvocationsFailedToBeSentToDeadLetterCount``.

The lab clock's ``advance`` (:class:`.service.EventsService`) fires these instants in order with the rules', the
clock stopping at each; its loop fires them in real time. A restart keeps each schedule's next instant and the
retries under way (:meth:`SchedulerService.save_state`); instants that fell due while the cloud was stopped are
delivered late if younger than the target's maximum event age, else dropped, as for rules.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError
from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.models import lambda_backends
from moto.scheduler.models import Schedule as MotoSchedule
from moto.scheduler.models import scheduler_backends

from labkit.localcloud.awslambda.exceptions import TooManyRequests
from labkit.localcloud.awslambda.service import LambdaService
from labkit.localcloud.cloudwatch.telemetry import Keys, Telemetry
from labkit.localcloud.core.clock import ClockService
from labkit.localcloud.core.services import CloudContext, Route, Service
from labkit.localcloud.events import scheduler_targets as targets
from labkit.localcloud.events.scheduler_times import as_instant, first_instant, next_instant
from labkit.localcloud.events.service import MAX_EVENT_AGE, Due, EventsService
from labkit.localcloud.iam.principals import service_keys

log = logging.getLogger("labkit.localcloud.scheduler")
HISTORY_LIMIT = 1000
DEFAULT_RETRIES = 185
MAX_BACKOFF = 600.0
# Scheduler's own calls: its metrics, the deletion ActionAfterCompletion asks for, a dead-letter event (sent once the
# execution role is found allowed to send it, :meth:`SchedulerService._dead_letter`)
OWN_ACTIONS = ("cloudwatch:PutMetricData", "scheduler:DeleteSchedule", "sqs:GetQueueUrl", "sqs:SendMessage")
STAMP = targets.STAMP


@dataclass
class Entry:
    """What the scheduler keeps of a schedule: when it counts from and when it is next due (None: never)."""

    expression: str
    timezone: str
    start: str | None
    end: str | None
    anchor: str
    next_due: str | None

    def key(self) -> tuple[str, str, str | None, str | None]:
        return (self.expression, self.timezone, self.start, self.end)


@dataclass
class Retry:
    """A failed delivery waiting for its next attempt."""

    schedule_arn: str
    instant: str  # the schedule's instant (the event's scheduled time)
    due: str  # when the next attempt is made
    attempt: int  # the number of that attempt (2 = the first retry)
    execution_id: str


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _schedule_arn(arn: str) -> tuple[str, str, str, str]:
    """``(account, region, group, name)`` of a schedule ARN."""
    parts = arn.split(":")
    group, name = parts[5].split("/", 2)[1:]
    return parts[4], parts[3], group, name


class SchedulerService(Service):
    """EventBridge Scheduler's schedules on the lab clock; Lambda targets run through the ``lambda`` service."""

    name = "scheduler"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.clock = ctx.services.require(ClockService).clock
        self.entries: dict[str, Entry] = {}
        self.retries: list[Retry] = []
        self.history: list[dict[str, Any]] = []
        self.lock = threading.RLock()
        self._settled = 0.0  # the clock offset every lab process was last waited for to read
        keys = service_keys(targets.SCHEDULER_PRINCIPAL, OWN_ACTIONS)
        self._own_keys = Keys(keys.access_key_id, keys.secret_access_key, service_own=True)

    def start(self) -> None:
        self.ctx.services.require(EventsService).add_source(self)

    def routes(self) -> list[tuple[str, str, Route]]:
        return [("GET", "/_labkit/scheduler/history", lambda _r: {"firings": self.history[-200:]})]

    def summary(self) -> dict[str, Any]:
        return {"schedules": len(self.entries), "retries": len(self.retries), "firings": len(self.history)}

    # -- what a restart keeps ------------------------------------------------------------------------------
    def save_state(self) -> dict[str, Any]:
        entries, retries = dict(self.entries), list(self.retries)
        return {"entries": {arn: asdict(e) for arn, e in entries.items()}, "retries": [asdict(r) for r in retries],
                "history": list(self.history)[-HISTORY_LIMIT:]}

    def load_state(self, saved: dict[str, Any] | None, restored: bool) -> None:
        """Each schedule keeps its next instant; those that fell due while the cloud was stopped and are older
        than the target's maximum event age are dropped now (the younger ones are delivered late by the loop)."""
        if not saved or not restored:
            return
        self.entries = {arn: Entry(**e) for arn, e in saved.get("entries", {}).items()}
        self.retries = [Retry(**r) for r in saved.get("retries", [])]
        self.history = list(saved.get("history", []))
        now = self.clock.now()
        for arn, entry in self.entries.items():
            schedule = self._schedule(arn)
            if schedule is None or entry.next_due is None:
                continue
            oldest = now - dt.timedelta(seconds=self._max_age(schedule))
            first, dropped = _at(entry.next_due), 0
            due: dt.datetime | None = first
            while due is not None and due < oldest:
                dropped += 1
                due = next_instant(entry.expression, entry.timezone, _at(entry.anchor), due)
            entry.next_due = _iso(due)
            if dropped and schedule.state == "ENABLED":
                self._record(arn, schedule, first, status="dropped", attempt=1, error=(
                    f"{dropped} invocation(s) fell due while the local cloud was stopped and are older than the "
                    "target's maximum event age: dropped, as EventBridge Scheduler drops an event it could not "
                    "deliver in that time"))

    def after_reset(self) -> None:
        with self.lock:
            self.entries.clear()
            self.retries.clear()
            self.history.clear()

    # -- moto tells us of a schedule -------------------------------------------------------------------------
    def created(self, schedule: MotoSchedule) -> None:
        """A schedule was created: anchored now (one deleted and made again under its name starts afresh)."""
        with self.lock:
            self.entries.pop(schedule.arn, None)
        self.register(schedule)

    def register(self, schedule: MotoSchedule) -> None:
        """A schedule was created or updated: anchor it on the lab clock (kept when its timing is unchanged)."""
        start = as_instant(schedule.start_date)
        entry = Entry(schedule.schedule_expression, schedule.schedule_expression_timezone or "UTC",
                      _iso(start), _iso(as_instant(schedule.end_date)), "", None)
        with self.lock:
            current = self.entries.get(schedule.arn)
            if current is not None and current.key() == entry.key():
                return
            now = self.clock.now()
            anchor = start or now
            entry.anchor = anchor.isoformat()
            first = first_instant(entry.expression, entry.timezone, anchor)
            if first is not None and first < now - dt.timedelta(minutes=1):  # a StartDate long past: from now on
                first = next_instant(entry.expression, entry.timezone, anchor, now - dt.timedelta(microseconds=1))
            entry.next_due = _iso(first)
            self.entries[schedule.arn] = entry
        self.ctx.state.changed(self.name)

    def _schedule(self, arn: str) -> MotoSchedule | None:
        account, region, group, name = _schedule_arn(arn)
        try:
            found: MotoSchedule = scheduler_backends[account][region].schedule_groups[group].schedules[name]
        except KeyError:
            return None
        return found if found.arn == arn else None

    # -- what is due --------------------------------------------------------------------------------------
    def take_due(self, until: dt.datetime) -> list[Due]:
        """Every instant (and retry) due until ``until``, each with what fires it; the schedules move past them."""
        due: list[Due] = []
        with self.lock:
            for arn, entry in list(self.entries.items()):
                if entry.next_due is None or _at(entry.next_due) > until:
                    continue
                schedule = self._schedule(arn)
                if schedule is None:  # deleted
                    del self.entries[arn]
                    continue
                end = as_instant(schedule.end_date)
                last: dt.datetime | None = None
                while entry.next_due is not None and _at(entry.next_due) <= until:
                    instant = _at(entry.next_due)
                    if end is not None and instant > end:
                        entry.next_due = None
                        break
                    if schedule.state == "ENABLED":
                        due.append((instant, self._attempt(arn, instant, 1, str(uuid.uuid4()))))
                        last = instant
                    nxt = next_instant(entry.expression, entry.timezone, _at(entry.anchor), instant)
                    entry.next_due = _iso(nxt if nxt is None or end is None or nxt <= end else None)
                if entry.next_due is None and last is not None:
                    due.append((last, functools.partial(self._complete, arn)))
            for retry in [r for r in self.retries if _at(r.due) <= until]:
                self.retries.remove(retry)
                due.append((_at(retry.due), self._attempt(retry.schedule_arn, _at(retry.instant), retry.attempt,
                                                          retry.execution_id)))
        if due:
            self.ctx.state.changed(self.name)
        return due

    def _attempt(self, arn: str, instant: dt.datetime, attempt: int, execution_id: str) -> Any:
        """What fires one attempt. The clock's stop for it is not settled (``settles``): an attempt that runs
        nothing (a role that may not invoke, retried every few minutes for a day) costs no wait; one that invokes
        the function settles the clock first (:meth:`_deliver`)."""
        fire = functools.partial(self._fire, arn, instant, attempt, execution_id)
        fire.settles = False  # type: ignore[attr-defined]
        return fire

    def _complete(self, arn: str) -> list[dict[str, Any]]:
        """The schedule has invoked its target for the last time: ActionAfterCompletion."""
        schedule = self._schedule(arn)
        with self.lock:
            self.entries.pop(arn, None)
        if schedule is not None and schedule.action_after_completion == "DELETE":
            _account, region, group, name = _schedule_arn(arn)
            try:  # through the API, as any change of moto's records (saved with the request, under its lock)
                self._client("scheduler", region).delete_schedule(Name=name, GroupName=group)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":  # (deleted meanwhile: done)
                    raise
        self.ctx.state.changed(self.name)
        return []

    # -- firing ---------------------------------------------------------------------------------------------
    def _fire(self, arn: str, instant: dt.datetime, attempt: int, execution_id: str) -> list[dict[str, Any]]:
        schedule = self._schedule(arn)
        if schedule is None:
            return []
        target = dict(schedule.target or {})
        try:
            outcome = self._deliver(schedule, target, instant, attempt, execution_id)
        except Exception as exc:  # a bug in delivery: recorded and logged, never reported as the target's fault
            log.exception("delivering schedule %s failed", arn)
            outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        if outcome["status"] != "skipped":
            self._count(schedule, "InvocationAttemptCount")
        failure = outcome.pop("failure", None)
        if isinstance(failure, targets.Failure):
            self._count(schedule, "TargetErrorCount")
            outcome.update(self._after_failure(schedule, target, instant, attempt, execution_id, failure))
        return [self._record(arn, schedule, instant, attempt=attempt, **outcome)]

    def _deliver(self, schedule: MotoSchedule, target: dict[str, Any], instant: dt.datetime, attempt: int,
                 execution_id: str) -> dict[str, Any]:
        arn = str(target.get("Arn", ""))
        if not arn.startswith("arn:aws:lambda:") or ":function:" not in arn:
            return {"status": "skipped", "error": "the local cloud delivers EventBridge Scheduler schedules to "
                                                  "Lambda functions only"}
        failure = targets.authorize(str(target.get("RoleArn", "")), schedule.arn, "lambda:InvokeFunction", arn,
                                    execution_id)
        if failure is None:
            account, region = arn.split(":")[4], arn.split(":")[3]
            try:
                fn = lambda_backends[account][region].get_function(arn)
            except UnknownFunctionException:
                failure = targets.Failure("ResourceNotFoundException", f"Function not found: {arn}")
        if failure is not None:
            log.warning("schedule %s could not invoke %s: %s", schedule.arn, arn, failure.message)
            return {"status": "failed", "error": f"{failure.code}: {failure.message}", "failure": failure}
        body = targets.payload(target, schedule.arn, instant, execution_id, attempt).encode()
        lam = self.ctx.services.require(LambdaService)
        if self.clock.offset != self._settled:  # the stop did not wait: the function's own clock reads the instant
            self.clock.advance(0, settle=True)
            self._settled = self.clock.offset
        try:
            inv = lam.run(fn, body)
        except TooManyRequests:  # Lambda accepted the event: its own queue retries a throttled one
            lam.invoke(fn, body, invocation_type="Event")
            return {"status": "ok", "result": "", "error": "throttled: queued by Lambda for a later attempt"}
        result = (inv.result or b"").decode(errors="replace")
        return {"status": "ok" if not inv.error_type else "function_error", "request_id": inv.request_id,
                "function_error": inv.error_type, "result": result[:1000]}

    def _after_failure(self, schedule: MotoSchedule, target: dict[str, Any], instant: dt.datetime, attempt: int,
                       execution_id: str, failure: targets.Failure) -> dict[str, Any]:
        """Retry later while the retry policy allows, else drop (or dead-letter) the event."""
        policy = target.get("RetryPolicy") or {}
        retries = policy.get("MaximumRetryAttempts", DEFAULT_RETRIES)
        retries = DEFAULT_RETRIES if retries is None else int(retries)
        max_age = self._max_age(schedule)
        when = self.clock.now() + dt.timedelta(seconds=min(MAX_BACKOFF, 60.0 * 2 ** (attempt - 1)))
        if attempt <= retries and (when - instant).total_seconds() <= max_age:
            with self.lock:
                self.retries.append(Retry(schedule.arn, instant.isoformat(), when.isoformat(), attempt + 1,
                                          execution_id))
            self.ctx.state.changed(self.name)
            return {"status": "retrying", "next_attempt": when.strftime(STAMP)}
        exhausted = "MaximumRetryAttempts" if attempt > retries else "MaximumEventAgeInSeconds"
        self._count(schedule, "InvocationDroppedCount")
        queue = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not queue:
            return {"status": "dropped", "exhausted": exhausted}
        sent = self._dead_letter(queue, target, schedule.arn, instant, execution_id, attempt, failure, exhausted)
        self._count(schedule, "InvocationsSentToDeadLetterCount" if sent is None
                    else "InvocationsFailedToBeSentToDeadLetterCount")
        return {"status": "dead_lettered" if sent is None else "dropped", "exhausted": exhausted,
                "dead_letter": queue if sent is None else f"not sent: {sent}"}

    def _dead_letter(self, queue_arn: str, target: dict[str, Any], schedule_arn: str, instant: dt.datetime,
                     execution_id: str, attempts: int, failure: targets.Failure, exhausted: str) -> str | None:
        """Send the dead-letter event to the queue as the execution role; None when sent, else why not."""
        denied = targets.authorize(str(target.get("RoleArn", "")), schedule_arn, "sqs:SendMessage", queue_arn,
                                   execution_id)
        if denied is not None:
            return denied.message
        _arn, _partition, _service, region, account, name = queue_arn.split(":", 5)
        body, attributes = targets.dead_letter(target, schedule_arn, instant, execution_id, attempts, failure,
                                               exhausted)
        sqs = self._client("sqs", region)
        try:
            url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
        except ClientError as exc:  # the queue is gone (QueueDoesNotExist) or refuses the message
            return f"{exc.response['Error']['Code']}: {exc.response['Error'].get('Message', '')}"
        return None

    def _client(self, service: str, region: str) -> Any:
        return self.ctx.services.require(Telemetry).client(self._own_keys, service, region)

    def _max_age(self, schedule: MotoSchedule) -> float:
        age = ((schedule.target or {}).get("RetryPolicy") or {}).get("MaximumEventAgeInSeconds")
        return float(age) if age else float(MAX_EVENT_AGE)

    def _record(self, arn: str, schedule: MotoSchedule, instant: dt.datetime, **outcome: Any) -> dict[str, Any]:
        record = {"schedule": schedule.name, "group": schedule.group_name, "schedule_arn": arn,
                  "time": instant.strftime(STAMP), "target": (schedule.target or {}).get("Arn"), **outcome}
        with self.lock:
            self.history.append(record)
            del self.history[:-HISTORY_LIMIT]
        return record

    def _count(self, schedule: MotoSchedule, metric: str) -> None:
        """One ``AWS/Scheduler`` data point, account-wide and for the schedule's group."""
        region = schedule.arn.split(":")[3]
        for dimensions in ([], [{"Name": "ScheduleGroup", "Value": schedule.group_name}]):
            self.ctx.services.require(Telemetry).metric(self._own_keys, region, "AWS/Scheduler", {
                "MetricName": metric, "Value": 1.0, "Unit": "Count", "Dimensions": dimensions,
                "Timestamp": self.clock.now()})
