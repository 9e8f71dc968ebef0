"""Metric data points are sent as Values/Counts per metric and second: the same samples in fewer datums."""
from __future__ import annotations

import datetime as dt

from labkit.localcloud.cloudwatch.telemetry import MAX_VALUES, aggregate

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, 250_000, tzinfo=dt.timezone.utc)


def _point(name: str, value: float, at: dt.datetime, function: str = "f") -> dict:
    return {"MetricName": name, "Dimensions": [{"Name": "FunctionName", "Value": function}], "Timestamp": at,
            "Value": value, "Unit": "Count"}


def _samples(data: list[dict]) -> dict:
    """(metric, dimensions, second) -> sorted samples, whichever way the data points are written."""
    found: dict = {}
    for datum in data:
        key = (datum["MetricName"], str(datum["Dimensions"]), datum["Timestamp"].replace(microsecond=0))
        values = [(datum["Value"], 1)] if "Value" in datum else zip(datum["Values"], datum["Counts"])
        found.setdefault(key, []).extend(v for v, n in values for _ in range(int(n)))
    return {k: sorted(v) for k, v in found.items()}


def test_points_of_a_second_become_one_datum_with_the_same_samples():
    later = T0 + dt.timedelta(milliseconds=600)
    points = [_point("Invocations", 1.0, T0), _point("Invocations", 1.0, later), _point("Errors", 0.0, T0),
              _point("Invocations", 1.0, T0 + dt.timedelta(seconds=1)), _point("Invocations", 1.0, T0, "g")]
    merged = aggregate(points)
    assert len(merged) == 4
    first = next(d for d in merged if d["MetricName"] == "Invocations" and d["Dimensions"][0]["Value"] == "f")
    assert first["Values"] == [1.0] and first["Counts"] == [2.0] and first["Timestamp"] == T0.replace(microsecond=0)
    assert first["Unit"] == "Count"
    assert _samples(merged) == _samples(points)


def test_many_distinct_values_are_split_at_the_limit_and_other_shapes_pass_through():
    points = [_point("Duration", float(i), T0) for i in range(MAX_VALUES + 10)]
    odd = {"MetricName": "x", "Value": 1.0, "StorageResolution": 1, "Timestamp": T0}
    merged = aggregate([*points, odd])
    assert [len(d.get("Values", [])) for d in merged] == [MAX_VALUES, 10, 0]
    assert merged[-1] is odd
    assert _samples(merged[:-1]) == _samples(points)
