"""Lambda functions really run in awslambdaric workers, and fail the way AWS fails."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import time

import pytest
from botocore.config import Config

from labkit.lambda_platform import runtime as lambda_runtime
from labkit.localcloud.procs import CLOUD_MARKER, find_marked
from tests.helpers import make_zip, start_test_cloud, stop_test_cloud, until
from tests.helpers.lambdas import create_function, pymysql_layer_zip, role_arn

ECHO = '''
import os, time
COUNT = 0
def lambda_handler(event, context):
    global COUNT
    COUNT += 1
    print("event", event)
    began = time.time()
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise ValueError("the handler failed on purpose")
    try:
        import pandas
        lab_venv_visible = True
    except ImportError:
        lab_venv_visible = False
    env = {k: os.environ.get(k) for k in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "GREETING")}
    return {"count": COUNT, "lab_venv_visible": lab_venv_visible, "env": env,
            "remaining_ms": context.get_remaining_time_in_millis(), "request_id": context.aws_request_id,
            "pid": os.getpid(), "window": [began, time.time()]}
'''


def _invoke(lam, name: str, event: dict | None = None, **kwargs) -> tuple[dict, dict]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **kwargs)
    return response, json.loads(response["Payload"].read() or b"null")


def test_function_runs_with_aws_environment_and_only_the_runtime_packages(cloud):
    create_function(cloud, "env-fn", ECHO, MemorySize=256, Environment={"Variables": {"GREETING": "hi"}})
    response, body = _invoke(cloud.client("lambda"), "env-fn")
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert body["lab_venv_visible"] is False
    # The API as seen from inside: the lab's own address for it, on the cloud's port (the network model decides).
    inside = body["env"].pop("AWS_ENDPOINT_URL")
    assert inside.startswith("http://127.") and inside.endswith(f":{cloud.status.port}") and inside != cloud.endpoint
    assert body["env"] == {"AWS_LAMBDA_FUNCTION_NAME": "env-fn", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_REGION": "us-east-1",
                           "AWS_DEFAULT_REGION": "us-east-1", "GREETING": "hi"}
    assert 0 < body["remaining_ms"] <= 30_000  # the function's timeout (create_function's 30 s)


def test_boto3_inside_the_function_reaches_the_local_cloud(cloud):
    secret_arn = cloud.client("secretsmanager").create_secret(Name="fn-secret", SecretString='{"k": "v"}')["ARN"]
    cloud.client("iam").put_role_policy(RoleName="test-lambda-role", PolicyName="read-fn-secret", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                  "Resource": secret_arn}]}))
    source = ("import boto3, json\nsm = boto3.client('secretsmanager')\n"
              "def lambda_handler(event, context):\n"
              "    return json.loads(sm.get_secret_value(SecretId='fn-secret')['SecretString'])\n")
    create_function(cloud, "boto-fn", source)
    assert _invoke(cloud.client("lambda"), "boto-fn")[1] == {"k": "v"}


def test_missing_layer_is_an_import_module_error_until_the_layer_is_attached(cloud):
    lam = cloud.client("lambda")
    create_function(cloud, "needs-pymysql", "import pymysql\ndef lambda_handler(e, c):\n    return pymysql.VERSION_STRING\n")
    response, body = _invoke(lam, "needs-pymysql")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"] == "Unable to import module 'lambda_function': No module named 'pymysql'"

    content = pymysql_layer_zip()
    layer = lam.publish_layer_version(LayerName="pymysql", Content={"ZipFile": content},
                                      CompatibleRuntimes=[lambda_runtime()])
    assert layer["Content"]["CodeSize"] == len(content)  # kept in a file, not in the daemon's memory
    assert (cloud.home / "moto" / "layers" / f"{hashlib.sha256(content).hexdigest()}.zip").read_bytes() == content
    lam.update_function_configuration(FunctionName="needs-pymysql", Layers=[layer["LayerVersionArn"]])
    lam.get_waiter("function_updated_v2").wait(FunctionName="needs-pymysql")
    response, body = _invoke(lam, "needs-pymysql")
    assert "FunctionError" not in response and body.count(".") >= 2


def test_handler_exception_is_reported_like_aws(cloud):
    create_function(cloud, "fails", ECHO)
    response, body = _invoke(cloud.client("lambda"), "fails", {"fail": True})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "the handler failed on purpose"
    assert any("lambda_handler" in frame for frame in body["stackTrace"])


def test_timeout_kills_the_worker_and_says_so(cloud):
    create_function(cloud, "slow", ECHO, Timeout=1)
    response, body = _invoke(cloud.client("lambda"), "slow", {"sleep": 5})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorMessage"].endswith("Task timed out after 1.00 seconds")
    response, body = _invoke(cloud.client("lambda"), "slow")
    assert body["count"] == 1  # a fresh environment after the timeout


def test_invoke_answers_with_the_invocations_request_id_and_a_payload_is_no_parameter(cloud):
    """Lambda's service answers a synchronous Invoke itself (not moto's dispatch): the same answer, and AWS's
    x-amzn-RequestId, the id the function saw; a payload's keys are not Invoke's parameters (a "Qualifier" key
    that would fail Invoke's own pattern is only data); a qualifier still reaches moto."""
    create_function(cloud, "request-id-fn", ECHO)
    lam = cloud.client("lambda")
    response, body = _invoke(lam, "request-id-fn", {"Qualifier": "not a qualifier!", "FunctionName": "?"})
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert response["StatusCode"] == 200 and headers["x-amzn-requestid"] == body["request_id"]
    assert headers["content-type"] == "application/json" and headers["x-amz-executed-version"] == "$LATEST"
    assert int(headers["x-amz-crc32"]) >= 0 and body["count"] >= 1
    response, body = _invoke(lam, "request-id-fn", Qualifier="$LATEST")
    assert response["StatusCode"] == 200 and body["request_id"]


def test_globals_persist_while_warm_and_reset_after_a_configuration_update(cloud):
    lam = cloud.client("lambda")
    create_function(cloud, "counter", ECHO)
    assert [_invoke(lam, "counter")[1]["count"] for _ in range(3)] == [1, 2, 3]
    lam.update_function_configuration(FunctionName="counter", Environment={"Variables": {"GREETING": "new"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName="counter")
    body = _invoke(lam, "counter")[1]
    assert body["count"] == 1 and body["env"]["GREETING"] == "new"


def test_concurrent_invokes_get_their_own_workers(cloud):
    create_function(cloud, "parallel", ECHO)
    results = []

    def call() -> None:
        results.append(_invoke(cloud.client("lambda"), "parallel", {"sleep": 0.5})[1])

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and len({r["request_id"] for r in results}) == 2
    assert results[0]["pid"] != results[1]["pid"]  # two execution environments
    (start_a, end_a), (start_b, end_b) = (r["window"] for r in results)
    assert start_a < end_b and start_b < end_a  # that ran at the same time, not one after the other


def test_reserved_concurrency_throttles(cloud):
    lam = cloud.client("lambda", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    create_function(cloud, "limited", ECHO)
    lam.put_function_concurrency(FunctionName="limited", ReservedConcurrentExecutions=1)
    errors, outcomes = [], []

    def call() -> None:
        try:
            outcomes.append(_invoke(lam, "limited", {"sleep": 0.7})[1])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    assert [type(e).__name__ for e in errors] == ["TooManyRequestsException"], (errors, outcomes)


def test_event_and_dry_run_invocations(cloud):
    lam = cloud.client("lambda")
    create_function(cloud, "async-fn", ECHO)
    assert lam.invoke(FunctionName="async-fn", InvocationType="DryRun")["StatusCode"] == 204
    response = lam.invoke(FunctionName="async-fn", InvocationType="Event", Payload=b'{"marker": "async-42"}')
    assert response["StatusCode"] == 202
    logs = cloud.client("logs")

    def logged() -> bool:
        events = logs.filter_log_events(logGroupName="/aws/lambda/async-fn").get("events", []) \
            if logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/async-fn")["logGroups"] else []
        return any("async-42" in e["message"] for e in events)

    until(logged, 10, message="the asynchronous invocation's log line")


def test_logs_go_to_cloudwatch_and_tail_returns_the_last_4kb(cloud):
    lam = cloud.client("lambda")
    create_function(cloud, "logged", ECHO)
    response, _ = _invoke(lam, "logged", {"say": "hello-logs"}, LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    assert tail.startswith("START RequestId:") and "hello-logs" in tail and "REPORT RequestId:" in tail
    assert len(base64.b64decode(response["LogResult"])) <= 4096
    events = cloud.client("logs").filter_log_events(logGroupName="/aws/lambda/logged")["events"]
    messages = [e["message"] for e in events]
    assert any(m.startswith("START RequestId") for m in messages)
    assert any(m.startswith("END RequestId") for m in messages)
    assert any(m.startswith("REPORT RequestId") and "Init Duration" in m for m in messages)
    assert any("hello-logs" in m for m in messages)


def test_lambda_publishes_invocations_errors_and_duration(cloud):
    lam = cloud.client("lambda")
    create_function(cloud, "measured", ECHO)
    _invoke(lam, "measured", {"say": "counted"})
    _invoke(lam, "measured", {"fail": True})
    now = dt.datetime.fromisoformat(cloud.request("GET", "/_labkit/clock")["now"])  # data points carry lab time
    cloudwatch = cloud.client("cloudwatch")

    def statistic(metric: str, statistic: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName=metric, Dimensions=[{"Name": "FunctionName", "Value": "measured"}],
            StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(minutes=5), Period=3900,
            Statistics=[statistic])["Datapoints"]
        return sum(p[statistic] for p in points)

    assert statistic("Invocations", "Sum") == 2 and statistic("Errors", "Sum") == 1
    assert statistic("Duration", "SampleCount") == 2


def test_code_from_s3_and_get_function(cloud):
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket="code-bucket")
    s3.put_object(Bucket="code-bucket", Key="fn.zip",
                  Body=make_zip({"lambda_function.py": "def lambda_handler(e, c):\n    return 'from s3'\n"}))
    lam = cloud.client("lambda")
    lam.create_function(FunctionName="from-s3", Runtime=lambda_runtime(), Role=role_arn(cloud.client("iam")),
                        Handler="lambda_function.lambda_handler", Code={"S3Bucket": "code-bucket", "S3Key": "fn.zip"})
    lam.get_waiter("function_active_v2").wait(FunctionName="from-s3")
    assert lam.get_function(FunctionName="from-s3")["Configuration"]["State"] == "Active"
    assert _invoke(lam, "from-s3")[1] == "from s3"
    lam.update_function_code(FunctionName="from-s3", ZipFile=make_zip(
        {"lambda_function.py": "def lambda_handler(e, c):\n    return 'updated'\n"}))
    lam.get_waiter("function_updated_v2").wait(FunctionName="from-s3")
    assert _invoke(lam, "from-s3")[1] == "updated"


def test_unknown_function_is_resource_not_found(cloud):
    lam = cloud.client("lambda")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="does-not-exist")


def test_idle_workers_are_reaped(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_LAMBDA_IDLE_SECONDS", "1")
    cloud = start_test_cloud(tmp_path)
    try:
        create_function(cloud, "reaped", "def lambda_handler(e, c):\n    return 1\n")
        cloud.client("lambda").invoke(FunctionName="reaped")
        daemon = {cloud.status.pid}
        assert set(find_marked(CLOUD_MARKER, cloud.status.cloud_id)) - daemon  # a warm worker
        until(lambda: not set(find_marked(CLOUD_MARKER, cloud.status.cloud_id)) - daemon, 15, 0.2,
              message="the idle worker reaped")
        assert set(find_marked(CLOUD_MARKER, cloud.status.cloud_id)) == daemon
    finally:
        stop_test_cloud(cloud)


def test_a_statement_id_already_in_the_policy_is_refused_as_on_aws(cloud):
    lam = cloud.client("lambda")
    create_function(cloud, "permitted-twice", ECHO)
    permission = {"FunctionName": "permitted-twice", "StatementId": "events-invoke",
                  "Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com"}
    lam.add_permission(**permission)
    with pytest.raises(lam.exceptions.ResourceConflictException) as refused:
        lam.add_permission(**permission, SourceArn="arn:aws:events:us-east-1:123456789012:rule/other")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert refused.value.response["Error"]["Message"] == (
        "The statement id (events-invoke) provided already exists. Please provide a new statement id, "
        "or remove the existing statement.")
    policy = json.loads(lam.get_policy(FunctionName="permitted-twice")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["events-invoke"]
    assert "Condition" not in policy["Statement"][0]  # the first statement is kept, untouched
