"""What the lab's state needs to know of moto's CloudWatch Logs and CloudWatch (composed by
:mod:`labkit.localcloud.server`).

A log stream's events and the account's metric data only grow (the functions' logs and metrics, written every
second while a lab takes orders): each is saved in sealed chunks (:mod:`labkit.localcloud.core.chunks`), so a save
after PutLogEvents or PutMetricData costs what it added, not the whole history; a log event and a data point are
saved as columns (:func:`log_event_columns`, :func:`metric_datum_columns`), not one pickled object each.
"""
from __future__ import annotations

import functools
from typing import Any

from labkit.localcloud.core import chunks
from labkit.localcloud.core.pickling import StatePickler, StateRule


@functools.cache
def log_event_columns() -> chunks.Columns:
    """moto's ``LogEvent``: four plain values."""
    from moto.logs.models import LogEvent

    return chunks.Columns(LogEvent, ("ingestion_time", "timestamp", "message", "event_id"))


@functools.cache
def metric_datum_columns() -> chunks.Columns:
    """moto's ``MetricDatum`` (a value of PutMetricData): plain values and a list of ``Dimension`` objects, saved as
    name and value pairs (the same pairs pickled once per chunk)."""
    from moto.cloudwatch.models import MetricDatum

    return chunks.Columns(MetricDatum, ("namespace", "name", "timestamp", "dimensions", "unit", "value"),
                          {"dimensions": (_pack_dimensions, _unpack_dimensions)})


def _pack_dimensions(column: list[Any]) -> list[tuple[tuple[Any, Any], ...]] | None:
    from moto.cloudwatch.models import Dimension

    same: dict[tuple[tuple[Any, Any], ...], tuple[tuple[Any, Any], ...]] = {}
    packed = []
    for dimensions in column:
        if type(dimensions) is not list:
            return None
        pairs = []
        for dimension in dimensions:
            if type(dimension) is not Dimension or vars(dimension).keys() != {"name", "value"}:
                return None
            pairs.append((dimension.name, dimension.value))
        key = tuple(pairs)
        packed.append(same.setdefault(key, key))
    return packed


def _unpack_dimensions(packed: list[tuple[tuple[Any, Any], ...]]) -> list[list[Any]]:
    from moto.cloudwatch.models import Dimension

    def dimension(name: Any, value: Any) -> Any:
        made = Dimension.__new__(Dimension)
        made.name, made.value = name, value
        return made

    return [[dimension(name, value) for name, value in pairs] for pairs in packed]


def _log_stream(kind: Any, state: dict[str, Any]) -> Any:
    stream = kind.__new__(kind)
    vars(stream).update(state)
    return stream


def _reduce_stream(stream: Any, _pickler: StatePickler) -> Any:
    state = chunks.without_cache(vars(stream))
    state["events"] = chunks.Long(stream, "events", stream.events, log_event_columns())
    return _log_stream, (type(stream), state)


def _trim_cloudwatch(backend: Any, state: dict[str, Any]) -> dict[str, Any]:
    state = chunks.without_cache(state)
    state["metric_data"] = chunks.Long(backend, "metric_data", state["metric_data"], metric_datum_columns())
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
