"""A function's MemorySize and Runtime, as AWS's sandbox holds them (issue 26 rows 7 and 8, spec 7.1-7.3):
past MemorySize the kernel kills the whole worker and the invoke is Runtime.OutOfMemory; every supported python3.x
runtime runs, on the closest interpreter, and the log says so once."""
from __future__ import annotations

import base64
import datetime as dt
import json
import re

from labkit.localcloud.awslambda.service import python_version, runtime_python
from labkit.localcloud.awslambda.validation import RUNTIMES
from tests.helpers import make_zip, start_test_cloud, stop_test_cloud
from tests.helpers.lambdas import create_function, pymysql_layer_zip, role_arn

HOG = '''
import os
def lambda_handler(event, context):
    hog = b"x" * (event["mb"] << 20)  # touched: resident, as on AWS
    if event.get("child"):  # a child process of the sandbox takes it instead
        import subprocess, sys
        subprocess.run([sys.executable, "-c", f"x = b'x' * ({event['mb']} << 20)"])
        return {"survived": "child"}
    return {"survived": len(hog) >> 20, "pid": os.getpid()}
'''
REPORT = re.compile(r"REPORT RequestId: (\S+)\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: (\d+) MB\t"
                    r"Max Memory Used: (\d+) MB(\tInit Duration: [\d.]+ ms)?(.*)$")


def _invoke(lam, name: str, event: dict) -> tuple[dict, object, list[str]]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    return response, json.loads(response["Payload"].read()), base64.b64decode(response["LogResult"]).decode().splitlines()


def _report(lines: list[str]) -> re.Match[str]:
    found = [REPORT.match(line) for line in lines if line.startswith("REPORT")]
    assert len(found) == 1 and found[0], lines
    return found[0]


def _out_of_memory_like_aws(cloud, name: str, mechanism: str | None) -> None:
    lam = cloud.client("lambda")
    create_function(cloud, name, HOG, MemorySize=128)
    response, body, lines = _invoke(lam, name, {"mb": 400})
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    request_id = _report(lines)[1]
    killed = f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"
    assert body == {"errorType": "Runtime.OutOfMemory", "errorMessage": killed}
    assert killed in lines
    report = _report(lines)
    assert (report[2], report[3]) == ("128", "128")  # Max Memory Used = Memory Size
    assert report[4] and report[5] == "\tStatus: error\tError Type: Runtime.OutOfMemory"

    # the sandbox is gone: the next invoke is a cold start, and within the limit it works
    response, body, lines = _invoke(lam, name, {"mb": 20})
    assert "FunctionError" not in response and body["survived"] == 20
    report = _report(lines)
    assert report[4] and report[5] == "" and 20 <= int(report[3]) < 128

    logs = [e["message"] for e in cloud.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]]
    notes = [m for m in logs if m.startswith("labkit: memory limit")]
    if mechanism is None:  # as the cloud decided: a cgroup where it can make one (this machine: v1), else sampling
        decided = cloud.request("GET", "/_labkit/health")["services"]["lambda"]["memory_limits"]
        mechanism = {"cgroup v1": "cgroup v1 memory.limit_in_bytes", "cgroup v2": "cgroup v2 memory.max"}.get(
            decided, "sampling")
    assert len(notes) == 1 and notes[0].startswith(f"labkit: memory limit 128 MB enforced by {mechanism}")
    assert killed in logs

    now = dt.datetime.fromisoformat(cloud.request("GET", "/_labkit/clock")["now"])
    points = cloud.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="Errors", Dimensions=[{"Name": "FunctionName", "Value": name}],
        StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(minutes=5), Period=3900,
        Statistics=["Sum"])["Datapoints"]
    assert sum(p["Sum"] for p in points) == 1


def test_a_function_past_its_memory_size_is_killed_as_on_aws(cloud):
    """This machine's cloud can make cgroups (v1 here; v2 where that is the memory hierarchy): the kernel kills."""
    _out_of_memory_like_aws(cloud, "hog-128", None)


def test_without_cgroups_the_watchdog_kills_it_the_same_way(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_LAMBDA_MEMORY", "watchdog")
    cloud = start_test_cloud(tmp_path)
    try:
        _out_of_memory_like_aws(cloud, "hog-watched", "sampling the worker's resident memory every 10 ms")
    finally:
        stop_test_cloud(cloud)


def test_a_child_process_past_the_limit_takes_the_whole_sandbox(cloud):
    lam = cloud.client("lambda")
    create_function(cloud, "hog-child", HOG, MemorySize=128)
    pid = _invoke(lam, "hog-child", {"mb": 1})[1]["pid"]
    response, body, lines = _invoke(lam, "hog-child", {"mb": 300, "child": True})
    assert response["FunctionError"] == "Unhandled" and body["errorType"] == "Runtime.OutOfMemory"
    assert _report(lines)[5] == "\tStatus: error\tError Type: Runtime.OutOfMemory"
    assert _invoke(lam, "hog-child", {"mb": 1})[1]["pid"] != pid  # a new sandbox


def test_a_function_like_the_labs_fits_in_128_mb(cloud):
    """boto3 and pymysql imported, two clients made (the order validator's shape), in the smallest MemorySize:
    Max Memory Used is the worker's measured peak, well under the limit."""
    lam = cloud.client("lambda")
    layer = lam.publish_layer_version(LayerName="pymysql-128", Content={"ZipFile": pymysql_layer_zip()})
    source = ("import boto3, pymysql\nsm = boto3.client('secretsmanager')\ns3 = boto3.client('s3')\n"
              "def lambda_handler(event, context):\n    return pymysql.VERSION_STRING\n")
    create_function(cloud, "lab-shaped", source, MemorySize=128, Layers=[layer["LayerVersionArn"]])
    used = []
    for _ in range(3):
        response, body, lines = _invoke(lam, "lab-shaped", {})
        assert "FunctionError" not in response, body
        used.append(int(_report(lines)[3]))
    assert 10 < used[0] <= used[1] <= used[2] < 100  # a peak: it never goes down while the sandbox is warm


def test_every_python_runtime_aws_creates_runs_and_says_on_what(cloud):
    today = dt.datetime.fromisoformat(cloud.request("GET", "/_labkit/clock")["now"]).date().isoformat()
    creatable = [r for r, (_deprecated, block_create, _u) in RUNTIMES.items() if not block_create or block_create > today]
    assert {"python3.12", "python3.13"} <= set(creatable)  # the console's default for "Python 3.x"
    lam = cloud.client("lambda")
    version = python_version(runtime_python())
    for runtime in creatable:
        name = f"runs-{runtime.replace('.', '-')}"
        lam.create_function(FunctionName=name, Runtime=runtime, Role=role_arn(cloud.client("iam")),
                            Handler="lambda_function.lambda_handler", Code={"ZipFile": make_zip({"lambda_function.py": (
                                "import os, sys\ndef lambda_handler(e, c):\n"
                                "    return [os.environ['AWS_EXECUTION_ENV'], '%d.%d.%d' % sys.version_info[:3]]\n")})})
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        for _ in range(2):
            response, body, _lines = _invoke(lam, name, {})
            assert "FunctionError" not in response and body == [f"AWS_Lambda_{runtime}", version], runtime
        logs = [e["message"] for e in cloud.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]]
        said = [m for m in logs if " runs on Python " in m]
        if runtime == "python" + ".".join(version.split(".")[:2]):
            assert said == []
        else:
            assert said == [f"labkit: {runtime} runs on Python {version} on this machine"]  # once


def test_files_written_to_tmp_are_no_out_of_memory(cloud):
    """/tmp is the sandbox's disk: 300 MB written there by a 128 MB function is no OOM (the kernel reclaims the
    file cache it is charged before it would kill)."""
    lam = cloud.client("lambda")
    create_function(cloud, "tmp-writer", (
        "import os\ndef lambda_handler(e, c):\n    with open('/tmp/big-%d' % os.getpid(), 'wb') as f:\n"
        "        for _ in range(300):\n            f.write(b'x' * (1 << 20))\n"
        "    size = os.path.getsize(f.name)\n    os.remove(f.name)\n    return size >> 20\n"), MemorySize=128)
    response, body, lines = _invoke(lam, "tmp-writer", {})
    assert "FunctionError" not in response and body == 300, lines
    assert int(_report(lines)[3]) <= 128
