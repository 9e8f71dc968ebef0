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


def test_a_send_s_writes_carry_its_batch_header_after_signing_and_its_batch_ends_when_they_are_answered():
    import contextlib
    from types import SimpleNamespace

    from botocore.awsrequest import AWSResponse

    from labkit.localcloud.cloudwatch.telemetry import Keys, Telemetry
    from labkit.localcloud.core.services import StateAccess

    events: list[str] = []

    class State(StateAccess):
        @contextlib.contextmanager
        def batch(self):
            events.append("batch opened")
            yield {"X-Labkit-State-Batch": "the daemon's own"}
            events.append("batch saved")

    class Raw:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def stream(self, **_kwargs):
            yield self.body

    telemetry = Telemetry(SimpleNamespace(endpoint="http://127.0.0.1:9", state=State()))  # (nothing listens there)
    keys = Keys("AKIAEXAMPLE", "secret")

    def answer(request, event_name: str, **_kwargs):
        operation = event_name.rsplit(".", 1)[-1]
        signed = request.headers["Authorization"].decode().split("SignedHeaders=")[1].split(",")[0]
        events.append(f"{operation} {request.headers.get('X-Labkit-State-Batch')} signed:{signed}")
        body = b"<PutMetricDataResponse/>" if operation == "PutMetricData" else b"{}"
        return AWSResponse(request.url, 200, {}, Raw(body))

    for service in ("logs", "cloudwatch"):
        telemetry.client(keys, service, "us-east-1").meta.events.register("before-send", answer)
    telemetry.log(keys, "us-east-1", "/aws/lambda/f", "stream", 1_767_268_800_000, "line")
    telemetry.metric(keys, "us-east-1", "AWS/Lambda", _point("Invocations", 1.0, T0))
    telemetry.flush()
    assert [e.split(" signed:")[0] for e in events] == [
        "batch opened", "CreateLogGroup None", "CreateLogStream None", "PutLogEvents the daemon's own",
        "PutMetricData the daemon's own", "batch saved"], "writes join the batch; creating a group or stream does not"
    assert all("x-labkit-state-batch" not in e.split(" signed:")[1] for e in events if " signed:" in e)
    events.clear()
    telemetry.flush()
    assert events == [], "nothing queued: no batch"
