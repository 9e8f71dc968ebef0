"""Lambda as a service: warm pools per function configuration, Invoke, CloudWatch Logs and metrics.

:mod:`.patches` routes moto's ``LambdaFunction.invoke`` here, so ``lambda.invoke`` runs the real code in a worker
(:mod:`.runtime`). START/END/REPORT plus everything the handler prints go to the log
group ``/aws/lambda/<name>`` with the execution role's session, and Invocations/Errors/Duration/Throttles to
``AWS/Lambda`` with Lambda's own identity, both through the public API
(:mod:`labkit.localcloud.cloudwatch.telemetry`).

Each worker's memory is limited to the function's ``MemorySize`` (:mod:`.memory`), and every ``python3.x`` runtime
runs on the Lambda runtime environment's interpreter (:func:`interpreter_for`); the function's log says once, for
each configuration, what enforces the limit and which Python runs a runtime other than its own.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.iam.models import get_account_id_from
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, stop_when_event_set, wait_fixed
from werkzeug.wrappers import Response

from labkit.localcloud.awslambda import layers
from labkit.localcloud.awslambda.code import CodeDownloads
from labkit.localcloud.awslambda.exceptions import InvalidRequestContent, InvalidRuntime, ServiceError, TooManyRequests
from labkit.localcloud.awslambda.memory import MemoryLimits
from labkit.localcloud.awslambda.runtime import Invocation, Worker
from labkit.localcloud.cloudtrail.service import CloudTrailService
from labkit.localcloud.cloudwatch.telemetry import Keys, Telemetry
from labkit.localcloud.control import PROJECT_ROOT
from labkit.localcloud.core.clock import ClockService
from labkit.localcloud.core.services import ApiRequest, CloudContext, Service
from labkit.localcloud.iam.principals import role_session, service_keys

log = logging.getLogger("labkit.localcloud.lambda")
IDLE_SECONDS = float(os.environ.get("LABKIT_LAMBDA_IDLE_SECONDS", "300"))
TAIL_BYTES = 4096
MAX_RESPONSE = 6_000_000  # moto's cut for a response payload (sys.getsizeof, as it measures)
CREDENTIALS_SECONDS = 43200
RESERVED_ENV = {"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "_HANDLER",
                "AWS_EXECUTION_ENV", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
LAMBDA_PRINCIPAL = "lambda.amazonaws.com"
# the sandbox's own failures, which Lambda writes into the log and the REPORT line ("Status: error")
PLATFORM_ERRORS = ("Sandbox.Timedout", "Runtime.OutOfMemory", "Runtime.ExitError")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Non-standard token '{name}'")


def check_payload(payload: bytes) -> None:
    """AWS accepts only strict JSON as an Invoke payload (no NaN or Infinity)."""
    try:
        json.loads(payload, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidRequestContent(str(exc)) from None


def runtime_python() -> str:
    """The Lambda runtime venv's interpreter (``make setup`` builds ``.venv-lambda``)."""
    configured = os.environ.get("LABKIT_LAMBDA_PYTHON")
    return configured or str(PROJECT_ROOT / ".venv-lambda" / "bin" / "python")


@functools.cache
def python_version(python: str) -> str:
    """The full version of the interpreter ``python`` (``3.11.7``)."""
    return subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                          capture_output=True, text=True, check=True, timeout=30).stdout.strip()


def interpreter_for(runtime: str) -> tuple[str, str | None]:
    """The interpreter that runs a function of ``runtime`` (``python3.12``), and the line its log gets once when
    that is not the runtime's own Python.

    The local cloud has one Lambda runtime environment (``make setup`` builds ``.venv-lambda``: boto3 and
    awslambdaric, whose compiled part is built for one Python), so every supported ``python3.x`` runs on its
    interpreter, the closest the machine has to AWS's. A function's code that needs a newer Python than that
    fails as it would on an older runtime (a SyntaxError is ``Runtime.UserCodeSyntaxError``), and the log line says
    why. Blocked and unknown runtimes never get here: :mod:`.validation` refuses them at create and update.
    """
    python = runtime_python()
    if not Path(python).exists():
        raise ServiceError(f"The Lambda runtime environment {python} is missing; run `make setup` to build it.")
    version = python_version(python)
    if runtime == "python" + ".".join(version.split(".")[:2]):
        return python, None
    return python, f"labkit: {runtime} runs on Python {version} on this machine"


class Pool:
    """The workers of one function configuration; a new configuration gets a new pool."""

    def __init__(self, revision: str) -> None:
        self.revision = revision
        self.idle: list[Worker] = []
        self.busy: set[Worker] = set()
        self.starting = 0
        self.announced = False  # the function's log has had the configuration's notes (memory limit, interpreter)


class LambdaService(Service):
    """Warm pools of workers per function configuration; Invoke; the functions' CloudWatch Logs."""

    name = "lambda"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.pools: dict[str, Pool] = {}
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self._restored = False
        keys = service_keys(LAMBDA_PRINCIPAL, ("cloudwatch:PutMetricData", "s3:GetObject"))
        self._own_keys = Keys(keys.access_key_id, keys.secret_access_key, service_own=True)
        self.downloads = CodeDownloads(ctx.endpoint, keys)
        self.memory = MemoryLimits()

    @property
    def telemetry(self) -> Telemetry:
        return self.ctx.services.require(Telemetry)

    def start(self) -> None:
        code = self.ctx.service_dir("lambda", fresh=not self._restored)  # extracted code, named by its digest
        for half_done in code.glob("*/.*"):  # an extraction a crash interrupted
            shutil.rmtree(half_done, ignore_errors=True)
        self._take_in_layers()
        threading.Thread(target=self._reap, daemon=True, name="lambda-reaper").start()

    # -- what a restart keeps (issue 23): the records; workers start cold ---------------------------------------
    def load_state(self, saved: dict[str, Any] | None, restored: bool) -> None:
        self._restored = restored

    def _take_in_layers(self) -> None:
        """A checkpoint's layer zips join the folder; zips no layer version names (an earlier lab's, before a
        reset or a fresh start) are removed."""
        folder, imported = layers.layers_folder(), self.ctx.state.imported(self.name)
        if folder is not None and imported is not None:
            for zipped in imported.glob("*.zip"):
                zipped.replace(folder / zipped.name)
        used = {vars(version).get(layers.DIGEST) for _account, per_account in list(dict.items(lambda_backends))
                for backend in list(dict.values(per_account)) for layer in backend._layers._layers.values()
                for version in layer.layer_versions.values()}
        layers.collect({digest for digest in used if digest})

    def export_state(self, folder: Path) -> dict[str, Any] | None:
        """A checkpoint: the published layers' zips (the records name them by digest)."""
        source = layers.layers_folder()
        for zipped in sorted(source.glob("*.zip")) if source is not None else []:
            os.link(zipped, folder / zipped.name)
        return None

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {"runtime_python": runtime_python(), "memory_limits": self.memory.summary(),
                    "functions": {arn: {"idle": len(p.idle), "busy": len(p.busy)} for arn, p in self.pools.items()}}

    def on_request(self, call: ApiRequest) -> Response | None:
        """A download of a function's zip through the link GetFunction gave (:mod:`.code`)."""
        return self.downloads.answer(call)

    def serve(self, call: ApiRequest) -> Response | None:
        """A synchronous Invoke of ``$LATEST``, answered here with the payload, status and headers moto's dispatch
        gives it, without that dispatch (Flask, moto's request parsing and routing: more than half of the daemon's
        CPU per invoke); its ``x-amzn-RequestId`` is the invocation's request id, as on AWS. Every other Invoke
        (Event, DryRun, a qualifier, a function moto does not find, a body that is not UTF-8) goes to moto."""
        classified = call.classified
        if classified is None or classified.service != "lambda" or classified.operation != "Invoke":
            return None
        headers, params = call.request.headers, classified.params
        name, region = params.get("FunctionName"), call.region
        if (headers.get("X-Amz-Invocation-Type") or "RequestResponse") != "RequestResponse" \
                or params.get("Qualifier") not in (None, "$LATEST") or not name or not region:
            return None
        try:
            call.body.decode()  # (moto reads the body as text)
            fn = lambda_backends[_account(call)][region].get_function(name, None)  # as moto: $LATEST
        except Exception:  # moto answers it, with its own error
            return None
        payload, answer, inv = self._invoke(fn, call.body or b"{}", "RequestResponse",
                                            tail=headers.get("X-Amz-Log-Type") == "Tail",
                                            client_context=headers.get("X-Amz-Client-Context"))
        if sys.getsizeof(payload) > MAX_RESPONSE:  # as moto's LambdaResponse.invoke
            answer["x-amz-function-error"] = "Unhandled"
            payload = json.dumps({"errorMessage": "Response payload size exceeded maximum allowed payload size "
                                  "(6291556 bytes).", "errorType": "Function.ResponseSizeTooLarge"}).encode()
        answer.update({"content-type": "application/json", "x-amz-crc32": str(binascii.crc32(payload)),
                       "x-amzn-requestid": inv.request_id if inv is not None else str(uuid.uuid4()),
                       "access-control-allow-origin": "*", "Server": "amazon.com"})  # (as moto's server adds them)
        return Response(payload, status=200, headers=answer)

    # -- invoking ---------------------------------------------------------------------------------------
    def invoke(self, fn: Any, payload: bytes, invocation_type: str = "RequestResponse",
               tail: bool = False, client_context: str | None = None) -> tuple[bytes, dict[str, str]]:
        """Run ``fn`` with ``payload``; return the response payload and the headers AWS would send."""
        answer, headers, _inv = self._invoke(fn, payload, invocation_type, tail, client_context)
        return answer, headers

    def _invoke(self, fn: Any, payload: bytes, invocation_type: str, tail: bool,
                client_context: str | None) -> tuple[bytes, dict[str, str], Invocation | None]:
        if not str(fn.run_time or "").startswith("python"):
            raise InvalidRuntime(fn.run_time)
        check_payload(payload)
        if invocation_type == "DryRun":
            return b"", {}, None
        if invocation_type == "Event":
            threading.Thread(target=self._invoke_async, args=(fn, payload), daemon=True).start()
            return b"", {}, None
        inv = self.run(fn, payload, client_context=client_context)
        headers = {"x-amz-executed-version": "$LATEST"}
        if inv.error_type:
            headers["x-amz-function-error"] = "Unhandled"
        if tail:
            text = "\n".join(inv.log_lines) + "\n"
            headers["x-amz-log-result"] = base64.b64encode(text.encode()[-TAIL_BYTES:]).decode()
        return inv.result or b"null", headers, inv

    def _invoke_async(self, fn: Any, payload: bytes) -> None:
        """AWS queues asynchronous events and retries throttled ones; so does this, for up to 5 minutes."""
        retrying = Retrying(retry=retry_if_exception_type(TooManyRequests), wait=wait_fixed(0.2), reraise=True,
                            stop=stop_after_delay(300) | stop_when_event_set(self._stopping))
        try:
            retrying(self.run, fn, payload)
        except TooManyRequests:
            if not self._stopping.is_set():
                log.error("dropped an asynchronous event for %s: throttled for 5 minutes", fn.function_name)
        except Exception:
            log.exception("asynchronous invocation of %s failed", fn.function_name)

    def run(self, fn: Any, payload: bytes, client_context: str | None = None) -> Invocation:
        """Invoke synchronously and return the finished :class:`Invocation` (also used by EventBridge)."""
        try:
            worker, pool = self._acquire(fn)
        except TooManyRequests:
            self._metric(fn, "Throttles", 1.0, "Count")
            raise
        inv = Invocation(str(uuid.uuid4()), payload, fn.function_arn, float(fn.timeout), client_context)
        cold = worker.cold
        if not pool.announced:
            pool.announced = True
            for note in worker.notes:  # in the log group, not in this invocation's tail
                self._log(fn, worker, note)
        self._log(fn, worker, f"START RequestId: {inv.request_id} Version: $LATEST", inv)
        try:
            worker.run(inv)
        finally:
            self._release(fn, pool, worker)
        duration = (inv.finished - inv.started) * 1000
        if inv.error_type in PLATFORM_ERRORS and inv.result is not None:  # (the runtime wrote the error)
            self._log(fn, worker, json.loads(inv.result)["errorMessage"], inv)
        self._log(fn, worker, f"END RequestId: {inv.request_id}", inv)
        report = (f"REPORT RequestId: {inv.request_id}\tDuration: {duration:.2f} ms\tBilled Duration: "
                  f"{max(1, int(duration + 0.999))} ms\tMemory Size: {fn.memory_size} MB\tMax Memory Used: "
                  f"{inv.max_memory_mb} MB")
        if cold:
            report += f"\tInit Duration: {worker.init_duration_ms:.2f} ms"
        if inv.error_type == "Sandbox.Timedout":
            report += "\tStatus: timeout"
        elif inv.error_type in PLATFORM_ERRORS:
            report += f"\tStatus: error\tError Type: {inv.error_type}"
        self._log(fn, worker, report, inv)
        self._metric(fn, "Invocations", 1.0, "Count")
        self._metric(fn, "Errors", 1.0 if inv.error_type else 0.0, "Count")
        self._metric(fn, "Duration", round(duration, 2), "Milliseconds")
        return inv

    def _acquire(self, fn: Any) -> tuple[Worker, Pool]:
        """Take an idle worker or start one, within the function's reserved concurrency."""
        revision = _revision(fn)
        retired: list[Worker] = []
        with self.lock:
            pool = self.pools.get(fn.function_arn)
            if pool is None or pool.revision != revision:
                if pool:
                    retired = pool.idle
                pool = self.pools[fn.function_arn] = Pool(revision)
            limit = fn.reserved_concurrency
            if limit is not None and len(pool.busy) + pool.starting >= int(limit):
                raise TooManyRequests()
            while pool.idle and (not pool.idle[-1].usable or pool.idle[-1].retire_at < time.monotonic()):
                retired.append(pool.idle.pop())
            worker = pool.idle.pop() if pool.idle else None
            if worker:
                pool.busy.add(worker)
            else:
                pool.starting += 1
        for old in retired:
            old.kill()
        if worker is None:
            try:
                worker = self._spawn(fn)
            finally:
                with self.lock:
                    pool.starting -= 1
            with self.lock:
                pool.busy.add(worker)
        return worker, pool

    def _release(self, fn: Any, pool: Pool, worker: Worker) -> None:
        with self.lock:
            pool.busy.discard(worker)
            current = self.pools.get(fn.function_arn) is pool
            if current and worker.usable and not self._stopping.is_set():
                pool.idle.append(worker)
                return
        worker.kill()

    def _spawn(self, fn: Any) -> Worker:
        task_root = self._extract(fn.code_bytes, "code")
        paths = [str(task_root)]
        backend = lambda_backends[fn.account_id][fn.region]
        for layer in fn.layers:
            layer_version = backend.layers_versions_by_arn(layer["Arn"])
            if layer_version is None:  # AWS keeps a deleted version's content for the functions that use it
                raise ServiceError(f"The layer version {layer['Arn']} this function uses was deleted; the local "
                                   "cloud keeps no copy of it: publish the layer again and update the function.")
            root = self._extract(layer_version.code_bytes, "layers")
            paths += [str(root / "python" / "lib" / str(fn.run_time) / "site-packages"), str(root / "python")]
        region = fn.region
        # As on AWS: the execution role's session, named after the function, in the standard variables.
        session = role_session(fn.role, fn.function_name, region, CREDENTIALS_SECONDS)
        self.ctx.state.mark("sts")  # a session made outside a request: kept within half a second
        trail = self.ctx.services.find(CloudTrailService)
        if trail is not None:  # as on AWS, the event history shows Lambda assuming the role for the function
            trail.service_assumed_role("lambda.amazonaws.com", fn.role, fn.function_name, region)
        env = self.ctx.child_env("lambda", fn.function_arn, {
            **{k: str(v) for k, v in (fn.environment_vars or {}).items() if k not in RESERVED_ENV},
            "PYTHONPATH": os.pathsep.join(paths), "PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1",
            "LAMBDA_TASK_ROOT": str(task_root), "_HANDLER": fn.handler or "",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}", "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}", "HOME": str(task_root),
            "PATH": "/usr/local/bin:/usr/bin:/bin", "AWS_ACCESS_KEY_ID": session["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"], "AWS_SESSION_TOKEN": session["SessionToken"],
        }, region=region)
        python, runs_on = interpreter_for(str(fn.run_time))
        memory = self.memory.limit(int(fn.memory_size))
        worker = Worker(python, fn.handler or "lambda_function.lambda_handler", task_root, env,
                        lambda worker, line: self._log(fn, worker, line), clock=self._lab_time,
                        credentials=Keys(session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"]),
                        memory=memory)
        worker.notes = [memory.describe(), *([runs_on] if runs_on else [])]
        worker.retire_at = time.monotonic() + CREDENTIALS_SECONDS - 3600  # never run on expiring credentials
        return worker

    def _lab_time(self) -> float:
        """The lab clock (:mod:`labkit.localcloud.core.clock`), which the workers read too."""
        clock = self.ctx.services.find(ClockService)
        return clock.clock.timestamp() if clock is not None else time.time()

    def _extract(self, code: bytes, kind: str) -> Path:
        digest = hashlib.sha256(code).hexdigest()[:24]
        target = self.ctx.service_dir("lambda") / kind / digest
        if target.exists():
            return target
        staging = target.with_name(f".{digest}.{uuid.uuid4().hex}")
        with zipfile.ZipFile(io.BytesIO(code)) as archive:
            archive.extractall(staging)
        try:
            staging.rename(target)
        except OSError:  # another thread extracted the same archive first
            shutil.rmtree(staging, ignore_errors=True)
        return target

    # -- logs and metrics -----------------------------------------------------------------------------------
    def _log(self, fn: Any, worker: Worker, line: str, inv: Invocation | None = None) -> None:
        """Keep the line for the invocation's tail; queue it for CloudWatch Logs, written with the worker's
        execution-role session (as on AWS: a role that may not write logs leaves none)."""
        inv = inv or worker.current
        if inv is not None:
            inv.log_lines.append(line)
        if worker.credentials is not None:
            self.telemetry.log(worker.credentials, fn.region, f"/aws/lambda/{fn.function_name}", worker.log_stream,
                               int(self._lab_time() * 1000), line)

    def _metric(self, fn: Any, name: str, value: float, unit: str) -> None:
        """Queue one ``AWS/Lambda`` data point, published with Lambda's own identity."""
        self.telemetry.metric(self._own_keys, fn.region, "AWS/Lambda", {
            "MetricName": name, "Dimensions": [{"Name": "FunctionName", "Value": fn.function_name}],
            "Timestamp": dt.datetime.fromtimestamp(self._lab_time(), dt.timezone.utc), "Value": value,
            "Unit": unit})

    # -- lifetime --------------------------------------------------------------------------------------------
    def _reap(self) -> None:
        while not self._stopping.wait(5):
            now = time.monotonic()
            with self.lock:
                stale = [w for p in self.pools.values() for w in p.idle if now - w.last_used > IDLE_SECONDS]
                for pool in self.pools.values():
                    pool.idle = [w for w in pool.idle if w not in stale]
            for worker in stale:
                worker.kill()

    def retire(self, function_arn: str) -> None:
        """End every worker of a deleted function."""
        with self.lock:
            pool = self.pools.pop(function_arn, None)
        for worker in [*(pool.idle if pool else []), *(pool.busy if pool else [])]:
            worker.kill()

    def stop_all(self) -> None:
        with self.lock:
            workers = [w for p in self.pools.values() for w in (*p.idle, *p.busy)]
            self.pools.clear()
        for worker in workers:
            worker.kill()
        for worker in workers:  # gone before their cgroups are removed
            try:
                worker.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.warning("a Lambda worker (pid %d) outlived SIGKILL for 5 s", worker.proc.pid)
        self.memory.close()

    def after_reset(self) -> None:
        self.ctx.service_dir("lambda", fresh=True)
        layers.collect(set())


def _account(call: ApiRequest) -> str:
    """The account whose Lambda backend serves ``call``, found as moto finds it (BaseResponse.get_current_account)."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if "x-moto-account-id" in call.request.headers:
        return str(call.request.headers["x-moto-account-id"])
    return get_account_id_from(call.access_key_id or "AKIAEXAMPLE")


def _revision(fn: Any) -> str:
    if not getattr(fn, "_labkit_revision", None):
        fn._labkit_revision = uuid.uuid4().hex
    revision: str = fn._labkit_revision
    return revision
