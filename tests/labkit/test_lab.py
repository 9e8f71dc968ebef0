"""labkit against the local cloud: every step, idempotence, checks, the order path, teardown."""
from __future__ import annotations

import json
import urllib.request

import pytest

from labkit import checks, compute, database, functions, iam, network, schedule, secrets, storage, teardown
from labkit.localcloud import control
from labkit.localcloud.procs import INSTANCE_MARKER, find_marked
from labkit.steps import STEPS, run_step


def _resource_ids(lab) -> dict:
    return {
        "network": network.create_vpc(lab),
        "groups": network.security_group_ids(lab),
        "db": database.describe_db_instance(lab)["DbiResourceId"],
        "instance": compute.describe_instance(lab)["InstanceId"],
        "functions": functions.functions_frame(lab).to_dict(orient="records"),
        "bucket": storage.bucket_name(lab),
        "rule": schedule.create_schedule(lab),
        "layer": functions.ensure_layer(lab),
    }


def test_all_checks_pass(provisioned):
    frame = checks.all_checks(provisioned.lab)
    assert frame["passed"].all(), frame[~frame["passed"]].to_string()
    assert len(frame) >= 50


def test_up_twice_gives_the_same_resources(provisioned):
    lab = provisioned.lab
    before = _resource_ids(lab)
    for number in STEPS:
        run_step(lab, number)
    assert _resource_ids(lab) == before


def test_an_order_through_the_deployed_app_reaches_the_table(provisioned):
    url = compute.app_url(provisioned.lab)
    request = urllib.request.Request(url + "api/orders", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"customer_name": "Grace", "product": "Compiler",
                                                      "quantity": 1, "amount": "99.95"}).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        order_id = json.loads(response.read())["order_id"]
    orders = database.orders_frame(provisioned.lab)
    row = orders[orders["order_id"] == order_id]
    assert len(row) == 1 and row.iloc[0]["customer_name"] == "Grace" and row.iloc[0]["amount"] == 99.95


def test_secret_never_shows_the_password(provisioned):
    password = secrets.read_secret(provisioned.lab)["password"]
    shown = secrets.secret_frame(provisioned.lab).to_string()
    assert password not in shown and "********" in shown


def test_scheduled_report_lands_in_s3(provisioned):
    firings = schedule.run_scheduled_report(provisioned.lab, hours=24)
    assert list(firings["status"]) == ["ok"]
    key = firings.iloc[0]["key"]
    assert key in set(storage.reports_frame(provisioned.lab)["key"])


def test_least_privilege_policies_name_only_the_labs_resources(provisioned):
    lab = provisioned.lab
    report = iam.least_privilege_policy(lab, iam.REPORT_ROLE)
    resources = [s["Resource"] for s in report["Statement"]]
    assert f"arn:aws:s3:::{storage.bucket_name(lab)}/*" in resources
    assert any(r.endswith(f":secret:{iam.SECRET_NAME}-*") for r in resources)
    ec2 = iam.least_privilege_policy(lab, iam.EC2_ROLE)
    assert {a for s in ec2["Statement"] for a in s["Action"]} == {"secretsmanager:GetSecretValue",
                                                                  "lambda:InvokeFunction"}


def test_switching_to_least_privilege_and_back_keeps_everything_working(provisioned):
    from labkit import Lab

    lab = provisioned.lab
    same = dict(target="local", name=lab.name, cloud_port=lab.config.cloud_port, app_port=lab.config.app_port,
                home=lab.config.home)
    strict = Lab(policies="least-privilege", **same)
    try:
        for number in (5, 10, 12):
            run_step(strict, number)
        frame = iam.roles_frame(strict)
        assert set(frame["inline policies"]) == {"orders-lab-least-privilege"}
        assert frame.set_index("role").loc[iam.EC2_ROLE, "managed policies"] == "AmazonSSMManagedInstanceCore"
        result = functions.invoke(strict, iam.VALIDATOR_FUNCTION, {"customer_name": "Lee", "product": "Pi",
                                                                   "quantity": 3, "amount": 3.14})
        assert result.payload["status"] == "accepted"
        # The mode is the lab's: a Lab built without `policies` (as every notebook builds it) keeps it.
        assert iam.policy_mode(lab) == "least-privilege"
        for number in (5, 10, 12):
            run_step(lab, number)
        assert set(iam.roles_frame(lab)["inline policies"]) == {"orders-lab-least-privilege"}
    finally:
        managed = Lab(policies="managed", **same)
        for number in (5, 10, 12):
            run_step(managed, number)
    frame = iam.roles_frame(lab).set_index("role")
    assert iam.policy_mode(lab) == "managed" and "SecretsManagerReadWrite" in frame.loc[iam.EC2_ROLE, "managed policies"]
    # beside the tutorial's managed policies, what each role really needs
    assert "ec2:DescribeSubnets" in frame.loc[iam.VALIDATOR_ROLE, "really needs"]
    assert "secretsmanager:GetSecretValue" in frame.loc[iam.EC2_ROLE, "really needs"]


def test_failed_step_names_the_step_and_the_fix(provisioned, tmp_path):
    from labkit import Lab, StepError

    empty = Lab(target="local", name="never-built", cloud_port=provisioned.lab.config.cloud_port,
                home=provisioned.lab.config.home)
    with pytest.raises(StepError) as caught:
        run_step(empty, 2)
    assert "Step 1" in str(caught.value) or "step 1" in str(caught.value)
    assert "How to fix" in str(caught.value)


def test_a_second_lab_keeps_off_the_first_labs_resources(provisioned):
    from labkit import Lab, StepError

    lab = Lab(target="local", name="short-lived", cloud_port=provisioned.lab.config.cloud_port,
              home=provisioned.lab.config.home)
    for number in (1, 3):
        run_step(lab, number)
    with pytest.raises(StepError, match="belongs to lab 'test-lab'") as caught:
        run_step(lab, 2)  # the tutorial's subnet group name is the other lab's
    assert "labkit down --lab test-lab" in str(caught.value)
    left = teardown.delete_everything(lab)
    assert left.empty, left
    assert teardown.delete_everything(lab).empty  # idempotent
    assert not network.network_frame(lab)["id"].tolist()
    assert not network.network_frame(provisioned.lab).empty  # the other lab is untouched


def test_full_teardown_removes_every_resource_and_process(tmp_path):
    from labkit import Lab
    from labkit.steps import run_steps
    from tests.conftest import free_port

    lab = Lab(target="local", name="gone-lab", cloud_port=free_port(), app_port=free_port(), home=tmp_path)
    try:
        run_steps(lab, 1, 13)
        instance_id = compute.describe_instance(lab)["InstanceId"]
        assert find_marked(INSTANCE_MARKER, instance_id)  # the app service runs
        left = teardown.delete_everything(lab)
        assert left.empty, left.to_string()
        assert find_marked(INSTANCE_MARKER, instance_id) == []
        health = control.cloud_request("GET", "/_labkit/health", home=tmp_path)["services"]
        assert health["rds"]["instances"] == {} and health["lambda"]["functions"] == {}
    finally:
        control.stop_cloud(tmp_path)
