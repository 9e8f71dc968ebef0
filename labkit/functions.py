"""Steps 10 and 12: the pymysql layer, the two Lambda functions, and invoking them.

Packages are built deterministically (same code, same zip, same CodeSha256), so re-running a step
updates a function only when its code or configuration really changed.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_exception, retry_if_result, stop_after_delay, wait_fixed

from labkit import iam, lambda_platform
from labkit.config import as_read
from labkit.errors import StepError, if_exists, last_result
from labkit.lookups import function_configuration, require_security_group, vpc_ids
from labkit.names import (
    FUNCTIONS,
    REPORT_FUNCTION,
    REPORT_ROLE,
    REPORT_TIMEOUT,
    SECRET_NAME,
    VALIDATOR_FUNCTION,
    VALIDATOR_ROLE,
    VALIDATOR_TIMEOUT,
    bucket_name,
    layer_name,
    log_group,
)
from labkit.session import Lab
from labkit.tagging import claim, error_code

__all__ = ["Invocation", "create_daily_report_function", "create_order_validator", "ensure_function", "ensure_layer",
           "functions_frame", "invocations_frame", "invoke", "layer_name", "logs_frame", "report_fields", "vpc_config"]

INVOKE_MARGIN = 10  # seconds a synchronous invoke may take beyond the function's own timeout

PROJECT = Path(__file__).resolve().parents[1]
CODE = PROJECT / "lambda_code"
WHEELS = PROJECT / ".cache" / "wheels"
# The functions' runtime is the target's (lab.target.lambda_runtime(): on aws lambda_platform.AWS_RUNTIME, locally
# the Python of .venv-lambda, which runs them); the layer's compiled wheels (cryptography, cffi) are for that
# runtime and ARCHITECTURE, and `make setup` downloads them for both runtimes with the same pip options
# (labkit/lambda_platform.py), so the three agree.
ARCHITECTURE = lambda_platform.ARCHITECTURE


@functools.cache
def _runtime() -> str:
    return lambda_platform.runtime()


def __getattr__(name: str) -> Any:
    """``RUNTIME`` (``python3.11``) and ``LAYER_PLATFORM`` (pip's options) of the local Lambda runtime
    (.venv-lambda), derived on first use."""
    if name == "RUNTIME":
        return _runtime()
    if name == "LAYER_PLATFORM":
        return lambda_platform.layer_platform(_runtime(), ARCHITECTURE)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CA_BUNDLE_FILE = "rds-ca-bundle.pem"  # lambda_code/shared/orders_db.py reads it beside itself
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()


def package_function(folder: str, ca_bundle: bytes) -> bytes:
    """The function's own ``*.py`` plus ``lambda_code/shared``; never pymysql (that is the layer's job).

    ``ca_bundle`` (the RDS CA certificates: ``lab.target.db_ca_bundle()``) goes beside the code as
    ``rds-ca-bundle.pem``: the code connects to the database only with TLS, verifying the server against it."""
    files = {p.name: p.read_bytes() for p in sorted((CODE / "shared").glob("*.py"))}
    files.update({p.name: p.read_bytes() for p in sorted((CODE / folder).glob("*.py"))})
    files[CA_BUNDLE_FILE] = ca_bundle
    return _zip(files)


@functools.cache
def build_layer(runtime: str | None = None) -> bytes:
    """The pymysql layer (``python/pymysql/...``) for ``runtime`` (default: the local one): ``pip install --target
    python`` of the layer's requirements, offline from the wheels ``make setup`` keeps in .cache/wheels, zipped
    deterministically."""
    runtime = runtime or _runtime()
    requirements = CODE / "layers" / "pymysql" / "requirements.txt"
    with tempfile.TemporaryDirectory(prefix="labkit-layer-") as tmp:
        target = Path(tmp) / "python"
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               "--no-index", "--find-links", str(WHEELS), "--only-binary=:all:", "--no-compile",
                               *lambda_platform.layer_platform(runtime, ARCHITECTURE),
                               "--target", str(target), "-r", str(requirements)],
                              capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
        if done.returncode != 0:
            raise StepError(10, f"pip could not build the pymysql layer for {runtime} from {WHEELS}: "
                                f"{done.stderr.strip()[-500:]}",
                            "run `make setup` (it downloads the layer's wheels once, for the local and the AWS "
                            "runtime)")
        return _zip({str(p.relative_to(tmp)): p.read_bytes() for p in sorted(target.rglob("*")) if p.is_file()})


def _sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def ensure_layer(lab: Lab) -> str:
    """Publish the pymysql layer unless a version with the same content exists; return its version ARN."""
    lam, runtime = lab.client("lambda"), lab.target.lambda_runtime()
    content = build_layer(runtime)
    digest = _sha(content)
    for version in lam.list_layer_versions(LayerName=layer_name(lab)).get("LayerVersions", []):
        if digest in version.get("Description", ""):
            return version["LayerVersionArn"]
    return lam.publish_layer_version(LayerName=layer_name(lab), Content={"ZipFile": content},
                                     CompatibleRuntimes=[runtime], CompatibleArchitectures=[ARCHITECTURE],
                                     Description=f"pymysql for Orders Lab sha256:{digest}",
                                     LicenseInfo="MIT")["LayerVersionArn"]


def vpc_config(lab: Lab) -> dict:
    """The Lambdas' network: the two private subnets and the Lambda security group."""
    subnets, group = vpc_ids(lab)["subnets"], require_security_group(lab, "lambda", step=10)
    return {"SubnetIds": [subnets["private-a"], subnets["private-b"]], "SecurityGroupIds": [group]}


def ensure_function(lab: Lab, name: str, folder: str, role: str, env: dict[str, str], timeout: int, memory: int,
                    layers: list[str], vpc: dict | None) -> dict:
    """Create the function, or update its code and configuration where they differ; wait until it is ready.

    A re-run keeps environment variables that ``env`` does not name (a student's own, as task 10's), so running a
    step again never undoes a task; the lab's own variables are set to ``env``'s values."""
    lam = lab.client("lambda")
    code = package_function(folder, lab.target.db_ca_bundle())
    role_arn = role if role.startswith("arn:") else iam.ensure_role(lab, role)  # a role's ARN is used as it is
    config: dict[str, Any] = {"Role": role_arn, "Handler": "lambda_function.lambda_handler",
                              "Runtime": lab.target.lambda_runtime(),
                              "Timeout": timeout, "MemorySize": memory, "Layers": layers,
                              "Environment": {"Variables": env}}
    if vpc:
        config["VpcConfig"] = vpc
    step = {VALIDATOR_FUNCTION: 10, REPORT_FUNCTION: 12}.get(name, "function")
    current = lam.get_function(FunctionName=name)["Configuration"] if claim(lab, step, "function", name) else None
    if current is None:
        _create_with_role_retry(lam, name, code, config, lab)
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
    else:  # variables the lab does not set (a student's MIN_ORDER_AMOUNT, task 10) stay; the lab's are set
        kept = current.get("Environment", {}).get("Variables", {})
        config["Environment"] = {"Variables": {**kept, **env}}
        if current["CodeSha256"] != _sha(code) or current.get("Architectures", ["x86_64"]) != [ARCHITECTURE]:
            lam.update_function_code(FunctionName=name, ZipFile=code, Architectures=[ARCHITECTURE])
            lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        if _config_differs(current, config):
            lam.update_function_configuration(FunctionName=name, **config)
            lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    return lam.get_function(FunctionName=name)["Configuration"]


def _config_differs(current: dict, wanted: dict) -> bool:
    have = {"Role": current.get("Role"), "Handler": current.get("Handler"), "Runtime": current.get("Runtime"),
            "Timeout": current.get("Timeout"), "MemorySize": current.get("MemorySize"),
            "Layers": [layer["Arn"] for layer in current.get("Layers", [])],
            "Environment": {"Variables": current.get("Environment", {}).get("Variables", {})}}
    want = {k: v for k, v in wanted.items() if k != "VpcConfig"}
    vpc_now = current.get("VpcConfig") or {}
    vpc_want = wanted.get("VpcConfig") or {}
    vpc_same = (sorted(vpc_now.get("SubnetIds", [])) == sorted(vpc_want.get("SubnetIds", [])) and
                sorted(vpc_now.get("SecurityGroupIds", [])) == sorted(vpc_want.get("SecurityGroupIds", [])))
    return have != want or not vpc_same


# InvalidParameterValueException answers that pass once IAM has caught up (a new role, a policy just attached);
# every other one (a bad runtime, layer, subnet, handler, a package too large) is final and raised at once.
ROLE_NOT_READY = re.compile(r"The role defined for the function cannot be assumed by Lambda|"
                            r"The provided execution role does not have permissions to call \w+ on EC2")


def _create_with_role_retry(lam: Any, name: str, code: bytes, config: dict, lab: Lab, seconds: float = 120) -> None:
    """A new role takes a few seconds before Lambda can assume it, and a policy just attached before Lambda sees it
    (IAM is eventually consistent): until then CreateFunction answers InvalidParameterValueException, "The role
    defined for the function cannot be assumed by Lambda." or "The provided execution role does not have
    permissions to call CreateNetworkInterface on EC2". Only those are tried again, every 5 s for ``seconds``."""
    def role_not_ready(exc: BaseException) -> bool:
        return (isinstance(exc, ClientError) and error_code(exc) == "InvalidParameterValueException"
                and bool(ROLE_NOT_READY.search(exc.response.get("Error", {}).get("Message", ""))))

    wait = min(5.0, max(0.01, lab.target.poll_seconds / 3))
    Retrying(retry=retry_if_exception(role_not_ready), stop=stop_after_delay(seconds), wait=wait_fixed(wait),
             reraise=True)(lambda: lam.create_function(FunctionName=name, Code={"ZipFile": code},
                                                       Architectures=[ARCHITECTURE], Tags={"lab": lab.name},
                                                       **config))


def create_order_validator(lab: Lab) -> dict:
    """Step 10: role ``order-app-lambda-role``, the pymysql layer, ``order-validator`` in the private subnets.

    The 30 s timeout outlasts the code's own waits (5 s to connect to the database), so a failure comes back as its
    own error; a cold start in a VPC is no slower than outside one since Hyperplane ENIs."""
    return ensure_function(lab, VALIDATOR_FUNCTION, "order_validator", VALIDATOR_ROLE,
                           {"DB_SECRET_NAME": SECRET_NAME}, timeout=VALIDATOR_TIMEOUT, memory=256,
                           layers=[ensure_layer(lab)], vpc=vpc_config(lab))


def create_daily_report_function(lab: Lab) -> dict:
    """Step 12: role ``lambda-daily-delta-task-role`` and ``daily-delta-processor`` writing to the bucket."""
    return ensure_function(lab, REPORT_FUNCTION, "daily_report", REPORT_ROLE,
                           {"DB_SECRET_NAME": SECRET_NAME, "REPORT_BUCKET": bucket_name(lab),
                            "REPORT_PREFIX": "reports/"}, timeout=REPORT_TIMEOUT, memory=256,
                           layers=[ensure_layer(lab)], vpc=vpc_config(lab))


@dataclass(frozen=True)
class Invocation:
    function: str
    status_code: int
    function_error: str | None
    payload: Any
    log_tail: str


def invoke(lab: Lab, function: str, event: Any, read_only: bool = False) -> Invocation:
    """Invoke synchronously; the result, the FunctionError if any, and the last 4 KB of its log.

    The client waits the function's own timeout plus a margin, so it never gives up on an invocation that is
    still running (the default 60 s read timeout re-sent a 300 s function up to 8 times), and tries at most
    twice: a second attempt follows only a transport failure or a throttle. Order events carry their
    ``order_id``, so even a second run stores an order once.

    ``read_only``: the event changes nothing (the validator's lookup, or an order it refuses before it touches the
    database), so an unconfirmed aws lab sends it (:func:`labkit.config.as_read`).
    """
    client = _invoke_client(lab, function)
    with as_read("lambda:Invoke") if read_only else contextlib.nullcontext():
        response = client.invoke(FunctionName=function, Payload=json.dumps(event).encode(), LogType="Tail")
    raw = response["Payload"].read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")
    tail = base64.b64decode(response.get("LogResult", "")).decode(errors="replace")
    return Invocation(function, response["StatusCode"], response.get("FunctionError"), payload, tail)


def _invoke_client(lab: Lab, function: str) -> Any:
    """A Lambda client whose read timeout is the function's timeout plus a margin, with at most one retry."""
    timeout = lab.client("lambda").get_function_configuration(FunctionName=function).get("Timeout", 3)
    return lab.client("lambda", read_timeout=timeout + INVOKE_MARGIN, connect_timeout=10,
                      retries={"total_max_attempts": 2, "mode": "standard"})


def functions_frame(lab: Lab) -> pd.DataFrame:
    rows = []
    for name in FUNCTIONS:
        c = function_configuration(lab, name)
        if c is None:
            continue
        rows.append({"function": name, "state": c.get("State"), "runtime": c.get("Runtime"),
                     "timeout (s)": c.get("Timeout"), "memory (MB)": c.get("MemorySize"),
                     "layers": ", ".join(layer["Arn"].split(":")[-2] + ":" + layer["Arn"].split(":")[-1]
                                         for layer in c.get("Layers", [])),
                     "subnets": len((c.get("VpcConfig") or {}).get("SubnetIds", [])),
                     "role": c.get("Role", "").rsplit("/", 1)[-1]})
    return pd.DataFrame(rows)


def logs_frame(lab: Lab, function: str, contains: str | None = None, limit: int = 50,
               wait_seconds: float = 0) -> pd.DataFrame:
    """The function's recent CloudWatch Logs lines (optionally only those containing ``contains``).

    Every page of FilterLogEvents is read (one page can be empty while later ones are not). Log events reach
    CloudWatch Logs seconds after the invocation: with ``wait_seconds`` the lines are awaited that long.
    """
    frame = Retrying(retry=retry_if_result(lambda lines: lines.empty), stop=stop_after_delay(wait_seconds),
                     wait=wait_fixed(max(0.5, min(5.0, lab.target.poll_seconds / 3))),
                     retry_error_callback=last_result)(_log_lines, lab, function, contains)
    return frame.tail(limit).reset_index(drop=True)


def _log_lines(lab: Lab, function: str, contains: str | None) -> pd.DataFrame:
    pages = lab.client("logs").get_paginator("filter_log_events").paginate(logGroupName=log_group(function))
    events = if_exists(lambda: [e for page in pages for e in page.get("events", [])],
                       f"reading the logs of {function}")
    if events is None:
        return pd.DataFrame(columns=["time", "stream", "message"])
    events.sort(key=lambda e: (e["timestamp"], e.get("ingestionTime", 0)))
    rows = [{"time": pd.to_datetime(e["timestamp"], unit="ms", utc=True), "stream": e.get("logStreamName", ""),
             "message": e["message"].rstrip()} for e in events if not contains or contains in e["message"]]
    return pd.DataFrame(rows, columns=["time", "stream", "message"])


REPORT_FIELD = re.compile(r"(Duration|Billed Duration|Memory Size|Max Memory Used|Init Duration|Status|Error Type): "
                          r"([^\t]+?)\s*(?:\t|$)")
REPORT_COLUMNS = {"Duration": "duration (ms)", "Billed Duration": "billed (ms)", "Memory Size": "memory (MB)",
                  "Max Memory Used": "max memory used (MB)", "Init Duration": "init (ms)", "Status": "status",
                  "Error Type": "error type"}
TEXT_FIELDS = ("Status", "Error Type")


def report_fields(message: str) -> dict[str, Any]:
    """The fields of a Lambda ``REPORT RequestId: ...`` log line, numbers as numbers (ms, MB)."""
    fields: dict[str, Any] = {"request id": (message.split("RequestId: ", 1)[-1].split() or [""])[0]}
    for name, value in REPORT_FIELD.findall(message):
        number = value.removesuffix(" ms").removesuffix(" MB")
        fields[REPORT_COLUMNS[name]] = value if name in TEXT_FIELDS else float(number)
    return fields


def invocations_frame(lab: Lab, function: str, limit: int = 50, wait_seconds: float = 0) -> pd.DataFrame:
    """One row per invocation of ``function``, from its REPORT log lines: duration, billed time, memory."""
    lines = logs_frame(lab, function, contains="REPORT RequestId", limit=limit, wait_seconds=wait_seconds)
    columns = ["time", "request id", *REPORT_COLUMNS.values()]
    rows = [{"time": line.time, **report_fields(line.message)} for line in lines.itertuples()]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.dropna(axis=1, how="all") if not frame.empty else frame
