"""CloudTrail's event history for the local cloud: every management API call, by whom, when, and its answer.

On AWS, CloudTrail keeps 90 days of management events per region, and ``cloudtrail:LookupEvents`` (the
console's *Event history*) reads them. Here the daemon records every AWS API request it answers -- a
refusal by IAM included -- after the answer has gone (:meth:`CloudTrailService.on_answer`; the request path
only appends a small record to a ring buffer, everything else waits until someone looks), and answers
``LookupEvents`` itself (:meth:`CloudTrailService.on_request`, after IAM authorized ``cloudtrail:LookupEvents``),
with AWS's parameters, pagination and errors. Times are lab time (:mod:`labkit.localcloud.core.clock`). What AWS
leaves out is left out here too: data events (S3 objects, Lambda ``Invoke``), requests signed with keys no
account owns, and the cloud's own bookkeeping calls (:data:`~labkit.localcloud.core.services.INTERNAL_AGENT`).
When Lambda or EC2 gets credentials of a role for a function or an instance, the service's ``AssumeRole``
is recorded as AWS records it (``userIdentity.type`` ``AWSService``).

The history outlives the daemon (issue 23): each recorded event is one line appended to the lab's journal
(``state/cloudtrail/journal.jsonl``), read back at the next start; an event keeps its ``EventId`` (the ids derive
from two numbers kept with the service's state).
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import threading
import time
import uuid
from collections import deque
from typing import Any

from werkzeug.wrappers import Response

from labkit.localcloud.cloudtrail import events as trail_events
from labkit.localcloud.cloudtrail.events import Recorded, is_management, service_identity
from labkit.localcloud.core.clock import ClockService, LabClock
from labkit.localcloud.core.services import INTERNAL_AGENT, ApiRequest, CloudContext, Service

LIMIT = int(os.environ.get("LABKIT_TRAIL_EVENTS", "20000"))  # CloudTrail keeps 90 days; the lab the newest N
JOURNALED = ("number", "stamp", "principal", "access_key_id", "service", "operation", "region", "params", "status",
             "source_ip", "user_agent", "error_type", "identity", "session_created")
ATTRIBUTE_KEYS = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource",
                  "AccessKeyId")


class CloudTrailService(Service):
    """The event history of one local cloud (a ring buffer of the newest ``limit`` management events)."""

    name = "cloudtrail"

    def __init__(self, ctx: CloudContext, limit: int = LIMIT) -> None:
        self.ctx = ctx
        self.events: deque[Recorded] = deque(maxlen=limit)
        self._numbers = itertools.count(1)
        self._clock: LabClock | None = None
        self._sessions: dict[str, float] = {}  # "role/session" -> when its AssumeRole was answered (creationDate)
        self._journal = ctx.state.journal(self.name, limit)
        self._keeping = threading.Lock()

    def start(self) -> None:
        clock = self.ctx.services.find(ClockService)
        self._clock = clock.clock if clock is not None else None

    # -- what a restart keeps (issue 23) ----------------------------------------------------------------
    def save_state(self) -> dict[str, Any]:
        return {"event_ids": trail_events.EVENT_IDS, "request_ids": trail_events.REQUEST_IDS,
                "sessions": dict(self._sessions)}

    def load_state(self, saved: dict[str, Any] | None, restored: bool) -> None:
        """The history as it was: the journal's newest events, numbered on from the last, with the same ids."""
        if not saved or not restored:
            if self._journal is not None:
                self._journal.clear()
            self.ctx.state.changed(self.name)  # the ids' two numbers, kept from the first start on
            return
        trail_events.EVENT_IDS, trail_events.REQUEST_IDS = int(saved["event_ids"]), int(saved["request_ids"])
        self._sessions.update(saved.get("sessions", {}))
        rows = self._journal.read() if self._journal is not None else []
        for row in sorted(rows, key=lambda r: r["number"]):  # two requests may append out of their numbers' order
            error_body = row.pop("error_body", None)
            self.events.append(Recorded(**row, error_body=base64.b64decode(error_body) if error_body else None))
        if self.events:
            self._numbers = itertools.count(max(e.number for e in self.events) + 1)

    def _keep(self, event: Recorded) -> None:
        """Number the event and keep it: in the ring (in the order of the numbers, which LookupEvents' pages
        follow) and in the journal."""
        with self._keeping:
            event.number = next(self._numbers)
            self.events.append(event)
        if self._journal is not None:  # one line appended (a few microseconds)
            row = {k: getattr(event, k) for k in JOURNALED}
            if event.error_body is not None:
                row["error_body"] = base64.b64encode(event.error_body).decode()
            self._journal.append(row)

    def after_reset(self) -> None:
        self.events.clear()  # a reset is a fresh account
        self._sessions.clear()
        if self._journal is not None:
            self._journal.clear()

    def _session_started(self, role_arn: Any, session_name: Any, stamp: float) -> None:
        self._sessions[f"{str(role_arn).rsplit('/', 1)[-1]}/{session_name}"] = stamp
        if len(self._sessions) > 2 * (self.events.maxlen or LIMIT):
            self._sessions.pop(next(iter(self._sessions)))
        self.ctx.state.changed(self.name)

    def summary(self) -> dict[str, Any]:
        return {"events": len(self.events), "limit": self.events.maxlen}

    def _now(self) -> float:
        return self._clock.timestamp() if self._clock is not None else time.time()

    # -- recording (on the request path: keep it to a few microseconds) ----------------------------------------
    def on_answer(self, call: ApiRequest, status: int, error_body: bytes | None, error_type: str | None) -> None:
        environ = call.request.environ
        principal = environ.get("labkit.principal")
        if not principal or INTERNAL_AGENT in environ.get("HTTP_USER_AGENT", ""):
            return  # no account owns the keys (AWS records nothing either), or the cloud's own bookkeeping
        request = call.classified  # IAM classified it already (cached on the call)
        service = call.service or ""
        operation = request.operation if request is not None else ""
        if not operation or not is_management(service, operation):
            return
        params = request.params if request is not None else None
        if params and int(environ.get("CONTENT_LENGTH") or 0) > 8192:  # keep no archive or document in the buffer, only its size
            from labkit.redact import redact

            params = redact(params, limit=1000)
        now = self._now()
        if operation == "AssumeRole" and status < 400 and params:
            self._session_started(params.get("RoleArn"), params.get("RoleSessionName"), now)
        _, _, session = principal.partition(":assumed-role/")
        self._keep(Recorded(
            0, now, principal, call.access_key_id or "", service, operation,
            call.region or "us-east-1", params, status, environ.get("REMOTE_ADDR", "127.0.0.1"),
            environ.get("HTTP_USER_AGENT", ""), error_body, error_type,
            session_created=self._sessions.get(session) if session else None))

    def service_assumed_role(self, service_principal: str, role_arn: str, session_name: str, region: str) -> None:
        """An AWS service assumed a role for you (Lambda for a function, EC2 for an instance profile)."""
        now = self._now()
        self._session_started(role_arn, session_name, now)
        self._keep(Recorded(
            0, now, "", "", "sts", "AssumeRole", region,
            {"RoleArn": role_arn, "RoleSessionName": session_name}, 200, service_principal, service_principal,
            identity=service_identity(service_principal)))

    # -- LookupEvents ---------------------------------------------------------------------------------------
    def on_request(self, call: ApiRequest) -> Response | None:
        if call.service != "cloudtrail" or call.operation != "LookupEvents":
            return None
        try:
            params = json.loads(call.body or b"{}")
            answer = self.lookup(params if isinstance(params, dict) else {})
        except LookupError as refusal:
            code, message = refusal.args
            return call.refuse(code, message)
        return Response(json.dumps(answer), mimetype="application/x-amz-json-1.1",
                        headers={"x-amzn-RequestId": str(uuid.uuid4())})

    def lookup(self, params: dict[str, Any]) -> dict[str, Any]:
        """LookupEvents' answer for ``params``, newest first; LookupError(code, message) refuses it."""
        attributes = params.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise LookupError("InvalidLookupAttributesException", "You can only specify one lookup attribute.")
        wanted = None
        if attributes:
            key, value = attributes[0].get("AttributeKey"), attributes[0].get("AttributeValue")
            if key not in ATTRIBUTE_KEYS:
                raise LookupError("InvalidLookupAttributesException",
                                  f"Invalid lookup attribute key {key!r}; valid keys: {', '.join(ATTRIBUTE_KEYS)}.")
            if not isinstance(value, str) or not 1 <= len(value) <= 2000:
                raise LookupError("InvalidLookupAttributesException",
                                  "The lookup attribute value must be between 1 and 2000 characters long.")
            wanted = (key, value)
        limit = params.get("MaxResults", 50)
        if not isinstance(limit, int) or not 1 <= limit <= 50:
            raise LookupError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
        start, end = _time(params.get("StartTime")), _time(params.get("EndTime"))
        if start is not None and end is not None and start > end:
            raise LookupError("InvalidTimeRangeException",
                              "The start time of the time range must be before the end time.")
        if params.get("EventCategory") not in (None, "insight"):
            raise LookupError("InvalidEventCategoryException", "The event category must be insight.")
        query = _fingerprint(params)
        before = _read_token(params.get("NextToken"), query) if params.get("NextToken") else None
        if params.get("EventCategory") == "insight":
            return {"Events": []}  # the lab enables no CloudTrail Insights
        found: list[dict[str, Any]] = []
        last = None
        with self._keeping:  # a copy: other requests' events are kept meanwhile
            events = list(self.events)
        for event in reversed(events):
            number = event.number
            if before is not None and number >= before:
                continue
            stamp = int(event.stamp)  # the whole second the event is shown at
            if (start is not None and stamp < start) or (end is not None and stamp > end):
                continue
            if wanted and not _matches(event, *wanted):
                continue
            if len(found) == limit:
                return {"Events": found, "NextToken": _token(last, query)}
            found.append(event.lookup_event())
            last = number
        return {"Events": found}


def _time(value: Any) -> float | None:
    """A timestamp as botocore sends it in the JSON protocol (epoch seconds), or None."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LookupError("InvalidTimeRangeException", f"The time {value!r} is not valid.") from None


def _matches(event: Recorded, key: str, value: str) -> bool:
    if key == "EventId":
        return event.event_id == value
    if key == "EventName":
        return event.name == value
    if key == "ReadOnly":
        return str(event.read_only).lower() == value.lower()
    if key == "Username":
        return event.username == value
    if key == "EventSource":
        return event.source == value
    if key == "AccessKeyId":
        return event.access_key_id == value
    field = "ResourceType" if key == "ResourceType" else "ResourceName"
    return any(r[field] == value for r in event.resources())


def _fingerprint(params: dict[str, Any]) -> str:
    rest = {k: v for k, v in params.items() if k != "NextToken"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _token(number: int | None, query: str) -> str:
    return base64.urlsafe_b64encode(f"{number}:{query}".encode()).decode()


def _read_token(token: Any, query: str) -> int:
    """The event number a NextToken continues below; a token of other parameters is refused, as on AWS."""
    try:
        number, _, made_for = base64.urlsafe_b64decode(str(token).encode()).decode().partition(":")
        if made_for == query:
            return int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise LookupError("InvalidNextTokenException", "Invalid NextToken.")
