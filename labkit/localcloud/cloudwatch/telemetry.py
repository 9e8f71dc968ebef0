"""What AWS services write about themselves, written through the public API, off the request path.

Lambda writes a function's logs to CloudWatch Logs with the function's execution-role session, as AWS
does (CreateLogGroup, CreateLogStream, PutLogEvents): a role without the permissions of
AWSLambdaBasicExecutionRole leaves no logs. Lambda and EventBridge publish their metrics (``AWS/Lambda``,
``AWS/Events``) with their own identity (:func:`labkit.localcloud.iam.principals.service_keys`), since AWS publishes those
itself (so those calls stay out of the account's CloudTrail history; the role's CreateLogStream does not).
Callers only queue; a background thread sends every :data:`FLUSH_SECONDS`, and a Logs or
CloudWatch read first sends whatever is queued (this service's request hook), so a read never misses a
line or a data point written before it. A send's PutLogEvents and PutMetricData are one batch of the lab's state
(:meth:`~labkit.localcloud.core.services.StateAccess.batch`): saved together before the send returns (so before a
read that waited for it), as they would be one by one; their answers are read by nothing else meanwhile.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from werkzeug.wrappers import Response

from labkit.localcloud.core.models import botocore_session
from labkit.localcloud.core.services import INTERNAL_AGENT, ApiRequest, CloudContext, Service

log = logging.getLogger("labkit.localcloud.telemetry")
FLUSH_SECONDS = 1.0  # a read sends first, so nothing waits on this; each send is a signed PutLogEvents per stream
MAX_EVENTS, MAX_BYTES, EVENT_OVERHEAD = 10_000, 1_048_576, 26  # PutLogEvents' limits per batch
MAX_SPAN_MS = 24 * 3600 * 1000
MAX_MESSAGE = 262_144 - EVENT_OVERHEAD
MAX_METRICS = 1000  # PutMetricData's limit per request
MAX_VALUES = 150  # PutMetricData's limit of Values (and Counts) per datum
DENIED = {"AccessDeniedException", "AccessDenied"}
BATCHED = ("PutLogEvents", "PutMetricData")  # saved once per send (creating a group or stream: before its answer)
# reads that must see everything written before them
READS = {"logs": {"GetLogEvents", "FilterLogEvents", "DescribeLogStreams", "DescribeLogGroups", "StartQuery",
                  "GetQueryResults", "GetLogRecord"},
         "monitoring": {"GetMetricStatistics", "GetMetricData", "ListMetrics", "GetMetricWidgetImage"}}


@dataclass(frozen=True)
class Keys:
    """The credentials a record is written with (an execution-role session or a service's own keys)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    service_own: bool = False  # a service's own keys: its calls are AWS's doing, not the account's (no trail)


class Telemetry(Service):
    """Queues of log lines and metric data, sent by one background thread."""

    name = "telemetry"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self._queue_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._clients_lock = threading.Lock()
        self._lines: dict[tuple[Keys, str, str, str], list[tuple[int, str]]] = defaultdict(list)
        self._metrics: dict[tuple[Keys, str, str], list[dict[str, Any]]] = defaultdict(list)
        self._streams: set[tuple[str, str, str, str]] = set()  # (key id, region, group, stream) created
        self._clients: dict[tuple[Keys, str, str], Any] = {}
        self._botocore = botocore_session()
        # the requests are built here, well-formed: botocore's validation of every datum would only cost CPU
        self._config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=30,
                              parameter_validation=False)
        self._stop = threading.Event()
        self._batch_headers: dict[str, str] = {}  # while a send runs: what makes its writes one batch of the state
        self.sent = {"log_events": 0, "metric_data": 0, "dropped_log_events": 0}

    # -- what the services call ---------------------------------------------------------------------
    def log(self, keys: Keys, region: str, group: str, stream: str, timestamp_ms: int, message: str) -> None:
        """Queue one log event for ``group``/``stream``, to be written with ``keys``."""
        if len(message) > MAX_MESSAGE // 4:  # AWS cuts an event at 256 KB
            message = message.encode()[:MAX_MESSAGE].decode(errors="ignore")
        with self._queue_lock:
            self._lines[(keys, region, group, stream)].append((timestamp_ms, message))

    def metric(self, keys: Keys, region: str, namespace: str, datum: dict[str, Any]) -> None:
        """Queue one PutMetricData datum for ``namespace``, to be published with ``keys``."""
        with self._queue_lock:
            self._metrics[(keys, region, namespace)].append(datum)

    def client(self, keys: Keys, service: str, region: str) -> Any:
        """A botocore client of this cloud's public API signed with ``keys`` (kept for reuse)."""
        key = (keys, service, region)
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                if len(self._clients) > 256:
                    self._clients.clear()
                config = self._config.merge(Config(user_agent_extra=INTERNAL_AGENT)) if keys.service_own \
                    else self._config
                client = self._clients[key] = self._botocore.create_client(
                    service, region_name=region, endpoint_url=self.ctx.endpoint, config=config,
                    aws_access_key_id=keys.access_key_id, aws_secret_access_key=keys.secret_access_key,
                    aws_session_token=keys.session_token)
                for operation in BATCHED:
                    client.meta.events.register(f"before-send.*.{operation}", self._mark_batched)
            return client

    def _mark_batched(self, request: Any, **_kwargs: Any) -> None:
        """A write of a send (signed already: the header is not part of its signature) joins the send's batch."""
        request.headers.update(self._batch_headers)

    def flush(self) -> None:
        """Send everything queued so far; returns when it is written (or refused, as AWS would refuse it)."""
        with self._send_lock:
            with self._queue_lock:
                lines, self._lines = self._lines, defaultdict(list)
                metrics, self._metrics = self._metrics, defaultdict(list)
            if not lines and not metrics:
                return
            with self.ctx.state.batch() as self._batch_headers:
                try:
                    for (keys, region, group, stream), events in lines.items():
                        self._put_log_events(keys, region, group, stream, sorted(events, key=lambda e: e[0]))
                    for (keys, region, namespace), data in metrics.items():
                        self._put_metric_data(keys, region, namespace, data)
                finally:
                    self._batch_headers = {}

    # -- sending ------------------------------------------------------------------------------------
    def _put_log_events(self, keys: Keys, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        logs = self.client(keys, "logs", region)
        for batch in _batches(events):
            for attempt in (1, 2):
                if not self._ensure_stream(logs, keys, region, group, stream):
                    self.sent["dropped_log_events"] += len(batch)
                    return  # as on AWS: the role may not write this stream, so no logs appear
                try:
                    logs.put_log_events(logGroupName=group, logStreamName=stream,
                                        logEvents=[{"timestamp": t, "message": m} for t, m in batch])
                    self.sent["log_events"] += len(batch)
                    break
                except ClientError as exc:
                    code = exc.response["Error"]["Code"]
                    if code == "ResourceNotFoundException" and attempt == 1:  # the group or stream was deleted
                        self._streams.discard((keys.access_key_id, region, group, stream))
                        continue
                    self.sent["dropped_log_events"] += len(batch)
                    if code not in DENIED:
                        log.warning("PutLogEvents to %s refused: %s", group, exc)
                    return
                except EndpointConnectionError:  # the daemon is shutting down: its records go with it
                    return

    def _ensure_stream(self, logs: Any, keys: Keys, region: str, group: str, stream: str) -> bool:
        """CreateLogGroup (an existing group, or a role that may not create one, is fine) and CreateLogStream,
        once per stream and credentials."""
        known = (keys.access_key_id, region, group, stream)
        if known in self._streams:
            return True
        for operation, params in (("create_log_group", {"logGroupName": group}),
                                  ("create_log_stream", {"logGroupName": group, "logStreamName": stream})):
            try:
                getattr(logs, operation)(**params)
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if code == "ResourceAlreadyExistsException" or (code in DENIED and operation == "create_log_group"):
                    continue
                if code not in DENIED and code != "ResourceNotFoundException":
                    log.warning("%s for %s refused: %s", operation, group, exc)
                return False
            except EndpointConnectionError:
                return False
        self._streams.add(known)
        return True

    def _put_metric_data(self, keys: Keys, region: str, namespace: str, data: list[dict[str, Any]]) -> None:
        cloudwatch = self.client(keys, "cloudwatch", region)
        data = aggregate(data)
        for start in range(0, len(data), MAX_METRICS):
            try:
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start:start + MAX_METRICS])
                self.sent["metric_data"] += len(data[start:start + MAX_METRICS])
            except ClientError as exc:
                log.warning("PutMetricData to %s refused: %s", namespace, exc)
            except EndpointConnectionError:
                return

    # -- the service --------------------------------------------------------------------------------
    def on_request(self, call: ApiRequest) -> Response | None:
        if call.operation in READS.get(call.service or "", ()):
            self.flush()
        return None

    def start(self) -> None:
        self._stop = threading.Event()
        threading.Thread(target=self._loop, args=(self._stop,), daemon=True, name="telemetry").start()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # a bug here must not end the thread: logged with its traceback
                log.exception("sending logs and metrics failed")

    def summary(self) -> dict[str, Any]:
        with self._queue_lock:
            queued = sum(len(v) for v in self._lines.values()) + sum(len(v) for v in self._metrics.values())
        return {**self.sent, "queued": queued}

    def stop_all(self) -> None:
        """Send what is queued (the services that write here stop before this one), then stop sending."""
        self._stop.set()
        self.flush()

    def after_reset(self) -> None:
        with self._queue_lock:
            self._lines.clear()
            self._metrics.clear()
            self._streams.clear()
        self.start()


def aggregate(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Data points of one metric, dimensions and unit within the same second as one datum of ``Values`` and
    ``Counts`` (as the SDKs' and Lambda's own publishers send them): the same samples, so every statistic is
    unchanged, in a fraction of the request. CloudWatch keeps standard-resolution data at one-minute
    granularity anyway. Datums of another shape are sent as they are."""
    grouped: dict[tuple[Any, ...], dict[float, int]] = {}
    others: list[dict[str, Any]] = []
    for datum in data:
        stamp, value = datum.get("Timestamp"), datum.get("Value")
        if set(datum) - {"MetricName", "Dimensions", "Unit", "Timestamp", "Value"} or stamp is None or value is None:
            others.append(datum)
            continue
        dimensions = tuple((d["Name"], d["Value"]) for d in datum.get("Dimensions") or ())
        key = (datum["MetricName"], dimensions, datum.get("Unit"), stamp.replace(microsecond=0))
        counts = grouped.setdefault(key, {})
        counts[float(value)] = counts.get(float(value), 0) + 1
    merged: list[dict[str, Any]] = []
    for (name, dimensions, unit, stamp), counts in grouped.items():
        items = list(counts.items())
        for start in range(0, len(items), MAX_VALUES):
            chunk = items[start:start + MAX_VALUES]
            datum = {"MetricName": name, "Dimensions": [{"Name": n, "Value": v} for n, v in dimensions],
                     "Timestamp": stamp, "Values": [v for v, _ in chunk], "Counts": [float(c) for _, c in chunk]}
            if unit is not None:
                datum["Unit"] = unit
            merged.append(datum)
    return merged + others


def _batches(events: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Sorted events cut where PutLogEvents' limits (count, bytes, a 24-hour span) would be passed."""
    batches: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    size = 0
    for timestamp, message in events:
        cost = len(message.encode()) + EVENT_OVERHEAD
        if current and (len(current) >= MAX_EVENTS or size + cost > MAX_BYTES
                        or timestamp - current[0][0] >= MAX_SPAN_MS):
            batches.append(current)
            current, size = [], 0
        current.append((timestamp, message))
        size += cost
    if current:
        batches.append(current)
    return batches
