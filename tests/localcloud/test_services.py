"""The service registry and its hooks: a registered service sees every AWS request before moto, can refuse
one with the service's own error shape, annotates requests, and adds to the environment of launched processes."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from labkit.errors import CloudError
from labkit.localcloud import control
from labkit.localcloud import patches as listed_patches
from labkit.localcloud.core import patches as core_patches
from labkit.localcloud.core.requests import classify
from labkit.localcloud.core.services import Launch, Registry, Service
from tests.helpers import start_test_cloud, stop_test_cloud
from tests.helpers.lambdas import create_function
from tests.localcloud.probe_service import REFUSED

ENV_SOURCE = '''
import os
def lambda_handler(event, context):
    return {k: os.environ.get(k) for k in ("PROBE_LAUNCH", "PROBE_PRINCIPAL", "LD_PRELOAD")}
'''


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory):
    cloud = start_test_cloud(tmp_path_factory.mktemp("probe-home"), extra_services=(
        "tests.localcloud.probe_service:Probe", "tests.localcloud.probe_service:SecondProbe"))
    try:
        yield cloud
    finally:
        stop_test_cloud(cloud)


def test_a_request_hook_refuses_in_each_protocol(probed):
    calls = {
        "s3": lambda: probed.client("s3").create_bucket(Bucket="probe-refused"),
        "secretsmanager": lambda: probed.client("secretsmanager").create_secret(Name="probe", SecretString="x"),
        "ec2": lambda: probed.client("ec2").create_vpc(CidrBlock="10.9.0.0/16"),
        "iam": lambda: probed.client("iam").create_user(UserName="probe"),
        "lambda": lambda: probed.client("lambda").get_account_settings(),
    }
    for service, call in calls.items():
        with pytest.raises(ClientError) as caught:
            call()
        error = caught.value.response["Error"]
        operation = caught.value.operation_name
        assert (error["Code"], error["Message"]) == (REFUSED[operation], f"the probe refuses {operation}"), service
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # refused requests never reached moto, nor the hooks registered after the refusing one
    assert probed.client("s3").list_buckets()["Buckets"] == []
    assert probed.client("ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.9.0.0/16"]}])["Vpcs"] == []
    later = probed.request("GET", "/_labkit/second-probe")["operations"]
    assert "ListBuckets" in later and not set(REFUSED) & set(later)


def test_a_request_hook_sees_service_operation_region_and_caller(probed):
    caller = probed.client("sts").get_caller_identity()["Arn"]
    probed.client("logs").describe_log_groups()
    seen = probed.request("GET", "/_labkit/probe")["seen"]
    key = control.admin_credentials(probed.home)["aws_access_key_id"]
    # the iam service, registered first, annotated the caller before the probe saw the request
    assert {"service": "sts", "operation": "GetCallerIdentity", "region": "us-east-1", "access_key_id": key,
            "principal": caller} in seen
    assert {"service": "logs", "operation": "DescribeLogGroups", "region": "us-east-1", "access_key_id": key,
            "principal": caller} in seen


def test_launch_hooks_add_environment_and_combine_preloads(probed):
    arn = create_function(probed, "probe-env", ENV_SOURCE)
    payload = json.loads(probed.client("lambda").invoke(FunctionName="probe-env")["Payload"].read())
    assert payload["PROBE_LAUNCH"] == f"lambda {arn}"
    # the annotations of the Invoke that started the worker: the caller (by iam) and the probe's own
    caller = probed.client("sts").get_caller_identity()["Arn"]
    assert payload["PROBE_PRINCIPAL"] == f"{caller} let through"
    # the built-in services' preloads (the lab clock's libfaketime, the network model's connect() hook) come
    # first, as they are registered before the probes; then the probes' two: every service's entries kept
    preloads = payload["LD_PRELOAD"].split(":")
    assert preloads[-2:] == ["libm.so.6", "libdl.so.2"]
    assert any(entry.endswith("labkit_netlink.so") for entry in preloads[:-2])
    assert any("libfaketime" in entry for entry in preloads[:-2])
    assert {"kind": "lambda", "resource": arn} in probed.request("GET", "/_labkit/probe")["launches"]


def test_services_find_each_other_and_follow_the_lifecycle(probed):
    probe = probed.request("GET", "/_labkit/probe")
    assert probe["finds_lambda"] == "LambdaService" and probe["finds_second"] == "second-probe"
    health = probed.request("GET", "/_labkit/health")["services"]
    assert list(health) == ["clock", "timing", "iam", "validation", "cloudtrail", "imds", "network", "telemetry", "rds",
                            "lambda", "ec2", "events", "scheduler", "probe", "second-probe"]
    assert health["probe"]["requests"] >= 1
    control.reset_cloud(probed.home)
    assert probed.request("GET", "/_labkit/probe")["events"] == ["start", "stop_all", "after_reset"]


def test_moto_api_is_closed_even_to_the_owner(probed):
    probed.client("ssm").put_parameter(Name="probe-kept", Value="v", Type="String")
    for method, path in (("POST", "/moto-api/reset"), ("GET", "/moto-api/data.json")):  # would bypass IAM
        with pytest.raises(CloudError, match="403"):
            probed.request(method, path)
    assert probed.client("ssm").get_parameter(Name="probe-kept")["Parameter"]["Value"] == "v"  # no reset


def test_the_daemon_holds_only_what_the_lab_asked_for(probed):
    """On demand (iam.managed_policies, iam.patches, core.models): one IAM backend (moto would make one per partition, each with every AWS managed policy),
    the AWS managed policies named so far (lab-admin's AdministratorAccess), one copy of each service model, of
    which only the shapes read are kept as dicts (the calls' of this module, not EC2's 4,400)."""
    probed.client("ec2").describe_vpcs()
    probed.client("iam").get_policy(PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    inside = probed.request("GET", "/_labkit/probe/inside")
    assert inside["iam_partitions"] == {"123456789012": ["aws"]}
    assert inside["aws_managed_policies_made"] == 2
    assert inside["one_ec2_model"]
    kept, shapes = inside["ec2_shapes"]
    assert shapes > 4000 and 0 < kept < shapes // 10


def test_preload_keeps_what_is_there():
    launch = Launch("ec2", "i-1", "us-east-1", {"LD_PRELOAD": "/a.so /b.so"})
    launch.preload("/c.so")
    launch.preload("/a.so")
    assert launch.env["LD_PRELOAD"] == "/a.so:/b.so:/c.so"


def _operation(service: str, method: str, path: str, query: str = "") -> str:
    return classify(service, method, path, query, {}, None).operation


def test_rest_operations_are_read_from_the_botocore_model():
    assert _operation("lambda", "POST", "/2015-03-31/functions/fn/invocations") == "Invoke"
    assert _operation("lambda", "GET", "/2015-03-31/functions/fn/policy") == "GetPolicy"
    assert _operation("lambda", "GET", "/2015-03-31/functions/fn") == "GetFunction"
    assert _operation("s3", "PUT", "/bucket") == "CreateBucket"
    assert _operation("s3", "PUT", "/bucket/key.csv") == "PutObject"
    assert _operation("s3", "PUT", "/bucket", "tagging") == "PutBucketTagging"


def test_registry_stops_in_reverse_order_and_names_what_is_missing():
    order = []

    class Named(Service):
        def __init__(self, name: str) -> None:
            self.name = name

        def stop_all(self) -> None:
            order.append(self.name)
            if self.name == "b":
                raise RuntimeError("one failing does not keep the others running")

    registry = Registry()
    for name in "abc":
        registry.add(Named(name))
    registry.stop_all()
    assert order == ["c", "b", "a"]
    with pytest.raises(ValueError, match="already registered"):
        registry.add(Named("a"))
    from labkit.localcloud.awslambda.service import LambdaService

    assert registry.find(LambdaService) is None
    with pytest.raises(LookupError, match="no LambdaService registered as 'lambda'"):
        registry.require(LambdaService)


def test_the_moto_pin_is_the_one_the_patches_are_written_for():
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert re.search(r'"moto\[server\]==([^"]+)"', pyproject).group(1) == core_patches.MOTO_VERSION
    core_patches.check_version()
    rows = listed_patches.rows()
    labels = [row["patch"] for row in rows]
    assert len(labels) == len(set(labels)) and all(row["why"] for row in rows)
