"""A command on the aws path without AWS: what it asks the local cloud is recorded, then asked again by an aws
lab whose every client is a botocore Stubber queued with those answers, in order, with the same parameters.

The answers are the local cloud's (AWS's shapes: botocore parses them and the Stubber validates them against the
service model); the aws lab runs its own code path (its write guard, its target) and must ask exactly the same
questions: a call the aws path makes that the local one did not, or one it leaves out, fails the replay.
Nothing reaches AWS: a call without a queued answer raises before anything is sent.
"""
from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from botocore import xform_name
from botocore.response import StreamingBody
from botocore.stub import Stubber

from labkit import Lab, report, snapshot
from labkit.session import RETRIES


@dataclass
class Answer:
    service: str
    operation: str
    params: dict
    response: dict | None = None
    streams: dict[str, bytes] = field(default_factory=dict)  # streamed members (Invoke's Payload, an S3 Body)
    error: dict | None = None  # Code, Message, HTTP status

    @property
    def invoke(self) -> bool:
        """Lambda Invoke goes through a client of its own (functions._invoke_client)."""
        return (self.service, self.operation) == ("lambda", "Invoke")


@dataclass
class Recording:
    answers: list[Answer] = field(default_factory=list)

    def _asked(self, params: dict, context: dict, **_: Any) -> None:
        context["replay_params"] = copy.deepcopy(params)

    def _answered(self, http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        if isinstance(http_response, snapshot._Answered):  # not sent: answered from a shared read
            return
        answer = Answer(model.service_model.service_name, model.name, context.get("replay_params", {}))
        kept = {}
        for key, value in parsed.items():
            if isinstance(value, StreamingBody):  # read it for the record, and give the caller a fresh one
                data = value.read()
                parsed[key] = StreamingBody(io.BytesIO(data), len(data))
                answer.streams[key] = data
            elif key != "ResponseMetadata":
                kept[key] = copy.deepcopy(value)
        status = getattr(http_response, "status_code", 200)
        if status >= 300:
            error = parsed.get("Error", {})
            answer.error = {"Code": error.get("Code", ""), "Message": error.get("Message", ""), "status": status}
        else:
            answer.response = kept
        self.answers.append(answer)


def record(lab: Lab) -> Recording:
    """Record every call of ``lab``'s clients (made after this; ``lab`` must not have made a client yet)."""
    assert not lab._clients, "record before the lab makes its first client"
    recording = Recording()
    lab._session.events.register_first("before-parameter-build.*.*", recording._asked)
    lab._session.events.register("after-call.*.*", recording._answered)
    return recording


class Replay:
    """Stubbers for every client ``lab`` makes, queued with ``recording``'s answers for that client."""

    def __init__(self, lab: Lab, recording: Recording) -> None:
        self.lab, self.recording = lab, recording
        self.stubbers: list[Stubber] = []
        self.invoke_clients = 0
        make = lab._session.client

        def client(service: str, *args: Any, **kwargs: Any) -> Any:
            made = make(service, *args, **kwargs)
            invoke = service == "lambda" and kwargs.get("config") is not RETRIES
            self.invoke_clients += invoke
            stubber = Stubber(made)
            for answer in recording.answers:
                if answer.service == service and answer.invoke == invoke and (not invoke or self.invoke_clients == 1):
                    self._queue(stubber, answer)
            stubber.activate()
            self.stubbers.append(stubber)
            return made

        lab._session.client = client  # type: ignore[method-assign]

    @staticmethod
    def _queue(stubber: Stubber, answer: Answer) -> None:
        method = xform_name(answer.operation)
        if answer.error is not None:
            stubber.add_client_error(method, answer.error["Code"], answer.error["Message"], answer.error["status"],
                                     expected_params=answer.params)
            return
        shape = stubber.client.meta.service_model.operation_model(answer.operation).output_shape
        response = _without_empty_strings(shape, dict(answer.response or {}))
        response.update({key: StreamingBody(io.BytesIO(data), len(data)) for key, data in answer.streams.items()})
        stubber.add_response(method, response, answer.params)

    def assert_all_asked(self) -> None:
        for stubber in self.stubbers:
            left = [(q["operation_name"], q["expected_params"]) for q in stubber._queue]
            assert not left, (f"the aws path left {len(left)} {stubber.client.meta.service_model.service_name} calls "
                              f"unasked, the first: {str(left[0])[:600]}")
            stubber.assert_no_pending_responses()
        made = {(s.client.meta.service_model.service_name) for s in self.stubbers}
        asked = {a.service for a in self.recording.answers}
        assert asked <= made, f"the aws path never made a client for {sorted(asked - made)}"


def _without_empty_strings(shape: Any, value: Any) -> Any:
    """``value`` without the empty strings its shape says cannot be empty: AWS answers some unset members that way
    (SendCommand's ``OutputS3BucketName: ""``), botocore takes them, the Stubber's validation does not."""
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        return {key: _without_empty_strings(shape.members.get(key), item) for key, item in value.items()
                if not (item == "" and key in shape.members and shape.members[key].metadata.get("min", 0) > 0)}
    if shape.type_name == "list" and isinstance(value, list):
        return [_without_empty_strings(shape.member, item) for item in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {key: _without_empty_strings(shape.value, item) for key, item in value.items()}
    return value


class _InOrder:
    """A ThreadPoolExecutor that runs each task when it is submitted: the calls come in one order every time."""

    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def __enter__(self) -> _InOrder:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # handed to the caller, as the pool would
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def report_in_order(monkeypatch: Any) -> Iterator[None]:
    """The lab report's sections one after another, each read asked (not answered from the first one): the
    Stubber answers calls in the order they are queued, and asserts each call's parameters before it is sent."""
    monkeypatch.setattr(report, "ThreadPoolExecutor", _InOrder)
    monkeypatch.setattr(report, "shared_reads", lambda lab: contextlib.nullcontext(lab))
    yield
