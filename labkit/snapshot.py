"""One reading of the lab for a page that asks the same questions many times (the lab report).

The report's sections (the diagram, every step's checks, the network paths, the tasks) each describe the
VPC, the subnets, the instance, the database and the functions again: read alone, each step is right to ask.
Within :func:`shared_reads`, the lab's clients answer a read they already made (the same operation with the
same parameters) from its first answer instead of asking again, so the page shows one consistent moment of
the lab, read once. Only reads are shared (``Describe*``, ``Get*``, ``List*``, ``Head*`` that succeeded), never
a command's progress (SSM's command invocations) or a streamed body (S3 objects), and nothing outside the
``with`` block.
"""
from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Iterator
from typing import Any

from labkit.session import Lab

READS = ("Describe", "Get", "List", "Head")
POLLED = {("ssm", "GetCommandInvocation"), ("ssm", "ListCommandInvocations"), ("ssm", "ListCommands")}
SERVICES = ("ec2", "rds", "lambda", "ssm", "s3", "secretsmanager", "events", "iam", "logs", "sts")


class _Answered:
    """What botocore needs of an HTTP response for an answer given before sending."""

    status_code = 200
    headers: dict[str, str] = {}


class _Reads:
    def __init__(self) -> None:
        self.answers: dict[tuple[str, str, str], Any] = {}
        self.lock = threading.Lock()

    @staticmethod
    def _key(model: Any, params: dict) -> tuple[str, str, str] | None:
        service = model.service_model.service_name
        if not model.name.startswith(READS) or (service, model.name) in POLLED or model.has_streaming_output:
            return None  # an object's body (S3 GetObject) is a stream read once: always sent
        if _holds_policy_document(model.output_shape):
            return None  # botocore decodes IAM's policy documents in the answer after each call: never twice
        asked = [params.get("url_path"), params.get("query_string"), params.get("body")]
        return service, model.name, json.dumps(asked, sort_keys=True, default=str)

    def before_call(self, model: Any, params: dict, context: dict, **_: Any) -> tuple[Any, Any] | None:
        key = self._key(model, params)
        if key is None:
            return None
        context["labkit_read"] = key
        with self.lock:
            answer = self.answers.get(key)
        if answer is None:
            return None
        context.pop("labkit_call", None)  # not sent: the calls table (labkit.calls) lists what was sent
        return _Answered(), copy.deepcopy(answer)

    def after_call(self, http_response: Any, parsed: Any, context: dict, **_: Any) -> None:
        key = context.get("labkit_read")
        if key is not None and getattr(http_response, "status_code", 500) < 300 and not isinstance(
                http_response, _Answered):
            try:
                kept = copy.deepcopy(parsed)
            except TypeError:  # an answer holding something that cannot be copied is not shared
                return
            with self.lock:
                self.answers.setdefault(key, kept)


def _holds_policy_document(shape: Any, seen: set | None = None) -> bool:
    """Whether an answer of this shape carries an IAM policy document, which botocore's after-call handler
    (``json_decode_policies``) turns from quoted JSON into a dict in place: a shared answer would be decoded
    again, and fail."""
    seen = set() if seen is None else seen
    if shape is None or shape.name in seen:
        return False
    seen.add(shape.name)
    if shape.type_name == "string":
        return shape.name == "policyDocumentType"
    if shape.type_name == "structure":
        return any(_holds_policy_document(member, seen) for member in shape.members.values())
    if shape.type_name == "list":
        return _holds_policy_document(shape.member, seen)
    if shape.type_name == "map":
        return _holds_policy_document(shape.value, seen)
    return False


@contextlib.contextmanager
def shared_reads(lab: Lab) -> Iterator[Lab]:
    """Within the block, the lab's clients (made here first, so threads share them) answer a repeated read from
    its first answer."""
    reads = _Reads()
    hooks = []
    for service in SERVICES:
        events = lab.client(service).meta.events
        key = f"labkit-shared-reads-{id(reads)}"
        events.register_first("before-call", reads.before_call, unique_id=key + "-before")
        events.register("after-call", reads.after_call, unique_id=key + "-after")
        hooks.append((events, key))
    try:
        yield lab
    finally:
        for events, key in hooks:
            events.unregister("before-call", unique_id=key + "-before")
            events.unregister("after-call", unique_id=key + "-after")
