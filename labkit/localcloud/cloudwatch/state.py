"""What the lab's state needs to know of moto's CloudWatch Logs and CloudWatch (composed by
:mod:`labkit.localcloud.server`).

A log stream's events and the account's metric data only grow (the functions' logs and metrics, written every
second while a lab takes orders): each is saved in sealed chunks (:mod:`labkit.localcloud.core.chunks`), so a save
after PutLogEvents or PutMetricData costs what it added, not the whole history.
"""
from __future__ import annotations

from typing import Any

from labkit.localcloud.core import chunks
from labkit.localcloud.core.pickling import StatePickler, StateRule


def _log_stream(kind: Any, state: dict[str, Any]) -> Any:
    stream = kind.__new__(kind)
    vars(stream).update(state)
    return stream


def _reduce_stream(stream: Any, _pickler: StatePickler) -> Any:
    state = chunks.without_cache(vars(stream))
    state["events"] = chunks.Long(stream, "events", stream.events)
    return _log_stream, (type(stream), state)


def _trim_cloudwatch(backend: Any, state: dict[str, Any]) -> dict[str, Any]:
    state = chunks.without_cache(state)
    state["metric_data"] = chunks.Long(backend, "metric_data", state["metric_data"])
    return state


def rules() -> list[StateRule]:
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.logs.models import LogStream

    return [
        StateRule(LogStream, "its events only grow: saved in sealed chunks, each pickled once", reduce=_reduce_stream),
        StateRule(CloudWatchBackend, "its metric data only grow: saved in sealed chunks, each pickled once",
                  trim=_trim_cloudwatch),
        *chunks.rules(),
    ]
