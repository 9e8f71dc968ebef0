"""The lab's IAM under enforcement: every least-privilege statement is needed, frames, troubleshooting cases."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from labkit import compute, database, functions, iam, schedule, troubleshoot, troubleshoot_iam
from labkit.errors import StepError
from labkit.steps import run_step

POLICY = "orders-lab-least-privilege"
ORDER = {"customer_name": "Ada", "product": "Engine", "quantity": 1, "amount": "2.50"}


@pytest.fixture(scope="module")
def strict(provisioned):
    """The provisioned lab switched to least privilege (steps 5, 10, 12); back to managed afterwards."""
    from labkit import Lab

    lab = provisioned.lab
    same = {"target": "local", "name": lab.name, "cloud_port": lab.config.cloud_port, "app_port": lab.config.app_port,
                "home": lab.config.home}
    strict = Lab(policies="least-privilege", **same)
    for number in (5, 10, 12):
        run_step(strict, number)
    try:
        yield strict
    finally:
        managed = Lab(policies="managed", **same)
        for number in (5, 10, 12):
            run_step(managed, number)


def _app_order(lab) -> int:
    request = urllib.request.Request(compute.app_url(lab) + "api/orders", method="POST",
                                     headers={"Content-Type": "application/json"}, data=json.dumps(ORDER).encode())
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _invoke_ok(lab, function: str, event: dict) -> bool:
    return functions.invoke(lab, function, event).function_error is None


def _cold_invoke_ok(lab, function: str, event: dict) -> bool:
    """Invoke in a fresh execution environment: a warm one keeps the secret it read (module-level cache)."""
    lam = lab.client("lambda")
    lam.update_function_configuration(FunctionName=function, Description=f"probe {time.time()}")
    lam.get_waiter("function_updated_v2").wait(FunctionName=function)
    return _invoke_ok(lab, function, event)


def _logged(lab, function: str, event: dict) -> bool:
    """Whether this invocation's START line reached CloudWatch Logs."""
    result = functions.invoke(lab, function, event)
    request_id = result.log_tail.split("START RequestId: ", 1)[1].split()[0]
    time.sleep(0.3)
    return not functions.logs_frame(lab, function, contains=request_id).empty


def _vpc_update_ok(lab, function: str) -> bool:
    try:
        lab.client("lambda").update_function_configuration(FunctionName=function, VpcConfig=functions.vpc_config(lab))
        lab.client("lambda").get_waiter("function_updated_v2").wait(FunctionName=function)
        return True
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "InvalidParameterValueException"
        return False


def _step6_ok(lab) -> bool:
    try:
        database.create_orders_table(lab)
        return True
    except StepError:
        return False


# (role, the statement's first action) -> the part of the system that needs it, True when it works
PROBES = {
    (iam.EC2_ROLE, "secretsmanager:GetSecretValue"): _step6_ok,
    (iam.EC2_ROLE, "lambda:InvokeFunction"): lambda lab: _app_order(lab) == 201,
    (iam.VALIDATOR_ROLE, "secretsmanager:GetSecretValue"):
        lambda lab: _cold_invoke_ok(lab, iam.VALIDATOR_FUNCTION, ORDER),
    (iam.VALIDATOR_ROLE, "logs:CreateLogGroup"): lambda lab: _logged(lab, iam.VALIDATOR_FUNCTION, {"amount": "0"}),
    (iam.VALIDATOR_ROLE, "ec2:CreateNetworkInterface"): lambda lab: _vpc_update_ok(lab, iam.VALIDATOR_FUNCTION),
    (iam.REPORT_ROLE, "secretsmanager:GetSecretValue"):
        lambda lab: _cold_invoke_ok(lab, iam.REPORT_FUNCTION, schedule.manual_window(lab)),
    (iam.REPORT_ROLE, "logs:CreateLogGroup"): lambda lab: _logged(lab, iam.REPORT_FUNCTION, schedule.manual_window(lab)),
    (iam.REPORT_ROLE, "ec2:CreateNetworkInterface"): lambda lab: _vpc_update_ok(lab, iam.REPORT_FUNCTION),
    (iam.REPORT_ROLE, "s3:PutObject"): lambda lab: _invoke_ok(lab, iam.REPORT_FUNCTION, schedule.manual_window(lab)),
}


def test_access_frame_shows_the_tutorials_full_access_policies(provisioned):
    frame = iam.access_frame(provisioned.lab, [iam.EC2_ROLE])
    s3 = frame[frame["policy"] == "AmazonS3FullAccess"]
    assert list(s3["actions"]) == ["s3:*, s3-object-lambda:*"] and list(s3["resources"]) == ["*"]
    assert set(frame["kind"]) == {"AWS managed"}


def test_trust_frame_names_the_service(provisioned):
    frame = iam.trust_frame(provisioned.lab, iam.VALIDATOR_ROLE)
    assert frame[["principal type", "principal", "actions"]].values.tolist() == [
        ["Service", "lambda.amazonaws.com", "sts:AssumeRole"]]


def test_troubleshooting_reproduces_the_iam_vpc_permission_error_and_its_fix(provisioned):
    lab = provisioned.lab
    try:
        error = troubleshoot_iam.vpc_permission_error(lab).iloc[0]
        assert error["result"] == "InvalidParameterValueException"
        assert error["message"] == "The provided execution role does not have permissions to call " \
                                   "CreateNetworkInterface on EC2"
        assert troubleshoot_iam.fix_vpc_permission(lab).iloc[0]["result"] == "OK"
    finally:
        troubleshoot.cleanup(lab)


def test_troubleshooting_reproduces_a_missing_permission_and_its_fix(provisioned):
    lab = provisioned.lab
    try:
        name = troubleshoot_iam.secret_permission_error(lab)
        answer = troubleshoot.try_probe(lab, name)
        assert answer.function_error == "Unhandled"
        assert "AccessDeniedException" in answer.answer
        assert (f"assumed-role/{troubleshoot_iam.probe_role_name(lab, 'no-secret-access')}/{name} is not authorized "
                "to perform: secretsmanager:GetSecretValue") in answer.answer
        troubleshoot_iam.fix_secret_permission(lab)
        assert troubleshoot.try_probe(lab, name).ok
    finally:
        removed = troubleshoot.cleanup(lab)
    assert troubleshoot_iam.probe_role_name(lab, "no-secret-access") in set(removed["name"])


# The least-privilege tests come last: the strict fixture keeps the lab in that mode until the module ends.
def test_every_least_privilege_statement_is_needed(strict):
    client = strict.client("iam")
    seen = set()
    for role in (iam.EC2_ROLE, iam.VALIDATOR_ROLE, iam.REPORT_ROLE):
        full = iam.least_privilege_policy(strict, role)
        for index, statement in enumerate(full["Statement"]):
            key = (role, statement["Action"][0])
            seen.add(key)
            probe = PROBES[key]
            assert probe(strict), f"{key} should work with the whole policy"
            without = {**full, "Statement": full["Statement"][:index] + full["Statement"][index + 1:]}
            client.put_role_policy(RoleName=role, PolicyName=POLICY, PolicyDocument=json.dumps(without))
            time.sleep(1.1)  # the Lambda service's view of a role lags a moment, as on AWS
            try:
                assert not probe(strict), f"removing {key} from {role} broke nothing: the statement is not needed"
            finally:
                client.put_role_policy(RoleName=role, PolicyName=POLICY, PolicyDocument=json.dumps(full))
                time.sleep(1.1)
    assert seen == set(PROBES)


def test_least_privilege_names_only_the_labs_own_resources(strict):
    frame = iam.access_frame(strict)
    own = f":{strict.account_id}:"
    for _, row in frame[frame["kind"] == "inline"].iterrows():
        for resource in row["resources"].split(", "):
            eni_only = row["actions"].startswith("ec2:")  # the ENI actions have no resource-level permissions
            assert (resource == "*" and eni_only) or own in resource or resource.startswith("arn:aws:s3:::"
                                                                                          + strict.name), row.to_dict()


def test_the_secret_format_case_works_under_least_privilege(strict):
    """Notebook 15's secret case (issue 25 item 2): under least privilege the validator role may read only
    order-db-secret, so the probe runs as a role of its own that may read the probe secret; the broken secret
    holds no real password, and the fix points the probe at the lab's secret."""
    password = json.loads(strict.client("secretsmanager").get_secret_value(
        SecretId=iam.SECRET_NAME)["SecretString"])["password"]
    try:
        secret = troubleshoot.write_broken_secret(strict)
        stored = strict.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"]
        assert password not in stored
        probe = troubleshoot.deploy_probe(strict, "secret", env={"DB_SECRET_NAME": secret})
        answer = troubleshoot.try_probe(strict, probe)
        assert answer.error_type == "SecretFormatError", answer
        fixed = troubleshoot.fix_secret(strict)
        assert fixed == iam.SECRET_NAME and troubleshoot.secret_keys_frame(strict, fixed)["present"].all()
        answer = troubleshoot.try_probe(strict, probe)
        assert answer.ok, answer
        document = strict.client("iam").get_role_policy(RoleName=iam.VALIDATOR_ROLE, PolicyName=POLICY)
        assert document["PolicyDocument"] == iam.least_privilege_policy(strict, iam.VALIDATOR_ROLE)  # unchanged
    finally:
        removed = troubleshoot.cleanup(strict)
    assert troubleshoot_iam.probe_role_name(strict, "secret") in set(removed["name"])
