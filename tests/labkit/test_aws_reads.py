"""On aws, reading a lab needs no confirmation (issue 25 item 1): `labkit check`, `tasks`, `status` and `report`
have no --yes, and an unconfirmed aws lab must still send what they ask: the Describe/Get/List calls, the SSM
commands that only read (a read-only query, a status) and the Invokes that change nothing (the validator's
lookup, an order it refuses). Everything else stays refused before it leaves the machine.

Each command runs twice against the same healthy lab: once on the local cloud, recording every answer, then on the
aws path with botocore's Stubber answering exactly those calls (tests/labkit/aws_replay.py). The aws run must ask
the same questions, leave none of them unasked, and show the same results.
"""
from __future__ import annotations

import io
import re

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from labkit import ConfigError, Lab, checks, cli, compute, config, functions, health, iam
from tests.labkit import aws_replay

INSTANCE = {"InstanceId": "i-0123456789abcdef0", "State": {"Name": "running"}, "InstanceType": "t3.micro"}


def _aws_lab(**kwargs) -> Lab:
    return Lab(target="aws", name=kwargs.pop("name", "stub-lab"), region=kwargs.pop("region", "eu-west-1"), **kwargs)


# -- the guard: what is a read is decided per call -------------------------------------------------------------
def _ssm_answers(stub: Stubber, ec2_stub: Stubber, script_ok: bool = True) -> None:
    ec2_stub.add_response("describe_instances", {"Reservations": [{"Instances": [INSTANCE]}]})
    stub.add_response("send_command", {"Command": {"CommandId": "c0ffee00-1111-2222-3333-444455556666"}})
    done = {"CommandId": "c0ffee00-1111-2222-3333-444455556666", "InstanceId": INSTANCE["InstanceId"],
            "Status": "Success", "StatusDetails": "Success", "ResponseCode": 0, "StandardOutputContent": "ok\n"}
    stub.add_client_error("get_command_invocation", "InvocationDoesNotExist", http_status_code=400)  # not yet
    stub.add_response("get_command_invocation", {**done, "Status": "InProgress", "StatusDetails": "InProgress"})
    stub.add_response("get_command_invocation", done)
    stub.add_response("get_command_invocation", done)


def test_an_unconfirmed_lab_sends_an_ssm_command_that_only_reads():
    lab = _aws_lab()
    lab.target.poll_seconds = 0.04
    ssm, ec2 = lab.client("ssm"), lab.client("ec2")
    with Stubber(ssm) as stub, Stubber(ec2) as ec2_stub:
        _ssm_answers(stub, ec2_stub)
        assert compute.run_on_instance(lab, "systemctl is-active orders-app", read_only=True) == "ok\n"
        stub.assert_no_pending_responses()
        ec2_stub.assert_no_pending_responses()


def test_an_unconfirmed_lab_refuses_a_command_not_marked_as_a_read():
    lab = _aws_lab()
    ssm, ec2 = lab.client("ssm"), lab.client("ec2")
    with Stubber(ssm) as stub, Stubber(ec2) as ec2_stub:  # no SendCommand queued: it must never be sent
        ec2_stub.add_response("describe_instances", {"Reservations": [{"Instances": [INSTANCE]}]})
        with pytest.raises(ConfigError, match="ssm SendCommand: lab 'stub-lab' .* needs confirmation first"):
            compute.run_on_instance(lab, "apt-get install -y nginx")
        stub.assert_no_pending_responses()
        ec2_stub.assert_no_pending_responses()


def _invoke_stubs(lab: Lab, payload: bytes, invokes: int = 1) -> tuple[Stubber, Stubber]:
    """Stubbers for the lab's Lambda client (each invoke first reads the function's timeout) and for the invoke
    client functions.invoke makes from it (one answer)."""
    main = Stubber(lab.client("lambda"))
    for _ in range(invokes + 1):
        main.add_response("get_function_configuration", {"FunctionName": iam.VALIDATOR_FUNCTION, "Timeout": 30},
                          {"FunctionName": iam.VALIDATOR_FUNCTION})
    with main:
        invoker = functions._invoke_client(lab, iam.VALIDATOR_FUNCTION)
    calls = Stubber(invoker)
    calls.add_response("invoke", {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(payload), len(payload)),
                                  "ExecutedVersion": "$LATEST"})
    return main, calls


def test_the_validators_lookup_is_a_read_and_status_says_the_path_is_up():
    lab = _aws_lab()
    main, calls = _invoke_stubs(lab, b'{"status": "not_found", "order_id": "00000000-0000-4000-8000-000000000000"}')
    with main, calls:
        row = health.function_row(lab)
        main.assert_no_pending_responses()
        calls.assert_no_pending_responses()
    assert row["state"] == "up" and row["detail"] == "lookup answered", row


def test_an_order_invoke_is_refused_unless_marked_or_confirmed():
    lab = _aws_lab()
    main, calls = _invoke_stubs(lab, b'{"status": "invalid", "errors": {"amount": "must be greater than 0"}}', 2)
    with main, calls:
        with pytest.raises(ConfigError, match="lambda Invoke"):
            functions.invoke(lab, iam.VALIDATOR_FUNCTION, {"customer_name": "Ada", "product": "Pen", "quantity": 1,
                                                           "amount": "2.00"})
        with pytest.raises(AssertionError):  # the invoke is still queued: it was never sent
            calls.assert_no_pending_responses()
        refused = functions.invoke(lab, iam.VALIDATOR_FUNCTION, {"customer_name": "Ada", "product": "Pen",
                                                                 "quantity": 1, "amount": "0"}, read_only=True)
        calls.assert_no_pending_responses()  # an order it refuses changes nothing: marked, it is sent
        main.assert_no_pending_responses()
    assert refused.payload["status"] == "invalid"


def test_only_the_calls_that_can_only_look_can_be_marked():
    with pytest.raises(ValueError, match="can be marked as reads"), config.as_read("ec2:RunInstances"):
        pass
    assert not config.is_read("ssm", "SendCommand")
    with config.as_read("ssm:SendCommand"):
        assert config.is_read("ssm", "SendCommand") and not config.is_read("lambda", "Invoke")
    assert not config.is_read("ssm", "SendCommand")  # only within the block
    assert config.is_read("ec2", "DescribeInstances") and not config.is_read("ec2", "CreateTags")


def test_a_refused_question_fails_its_check_with_the_refusal_and_the_step_goes_on(monkeypatch):
    def check(lab, t):
        answer = checks._safe(lambda: _aws_lab().target.require_confirmation("ssm SendCommand"), "")
        t.add("a check that must ask", "ok", answer)
        t.add("a check that asks nothing", True, True)

    monkeypatch.setitem(checks.CHECKS, 7, check)
    frame = checks.step_checks(None, 7)
    assert frame["passed"].tolist() == [False, True]
    assert re.match(r"not asked: ssm SendCommand: lab 'stub-lab' on a real AWS account .* needs confirmation first",
                    frame.iloc[0]["actual"])
    with pytest.raises(ConfigError):  # outside a check table a refusal is still an error
        checks._safe(lambda: _aws_lab().target.require_confirmation("x"))


# -- the commands, replayed on the aws path ---------------------------------------------------------------------
def _local_twin(provisioned) -> Lab:
    """A fresh Lab object for the provisioned lab (no client made yet, so every call can be recorded)."""
    lab = provisioned.lab
    return Lab(target="local", name=lab.name, region=lab.region, cloud_port=lab.config.cloud_port,
               app_port=lab.config.app_port, app_cidr=lab.config.app_cidr, home=provisioned.home)


def _aws_twin(local: Lab) -> Lab:
    """The same lab on the aws target, unconfirmed (no --yes), asking for your address where the local lab does."""
    aws = Lab(target="aws", name=local.name, region=local.region, app_port=local.config.app_port,
              app_cidr=local.config.app_cidr)
    aws.target.poll_seconds = 0.4  # the recorded waits replay quickly
    aws.target.checkip_url = local.target.checkip_url  # type: ignore[method-assign]
    aws.target.db_ca_bundle = local.target.db_ca_bundle  # type: ignore[method-assign]  # no download from AWS
    return aws


def _run(capsys, monkeypatch, lab: Lab, *argv: str) -> tuple[int, str]:
    monkeypatch.setattr(cli, "_lab", lambda args: lab)
    capsys.readouterr()
    code = cli.main(list(argv))
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    return code, out.out


def _on_both(provisioned, capsys, monkeypatch, *argv: str) -> tuple[tuple[int, str], tuple[int, str]]:
    local = _local_twin(provisioned)
    recording = aws_replay.record(local)
    on_local = _run(capsys, monkeypatch, local, *argv, "--target", "local")
    assert recording.answers, "nothing was recorded"
    aws = _aws_twin(local)
    replay = aws_replay.Replay(aws, recording)
    on_aws = _run(capsys, monkeypatch, aws, *argv, "--target", "aws")
    replay.assert_all_asked()
    return on_local, on_aws


def test_labkit_check_on_an_unconfirmed_aws_lab(provisioned, capsys, monkeypatch):
    (code, local), (aws_code, aws) = _on_both(provisioned, capsys, monkeypatch, "check")
    assert code == 0 and re.search(r"(\d+)/\1 checks passed", local), local
    assert aws_code == 0 and aws == local  # the same questions, the same answers, the same table
    assert "needs confirmation" not in aws


def test_labkit_tasks_on_an_unconfirmed_aws_lab(provisioned, capsys, monkeypatch):
    (code, local), (aws_code, aws) = _on_both(provisioned, capsys, monkeypatch, "tasks")
    assert code == aws_code == 0 and aws == local
    assert "needs confirmation" not in aws and "tasks passed" in aws


def test_labkit_status_on_an_unconfirmed_aws_lab(provisioned, capsys, monkeypatch):
    (code, local), (aws_code, aws) = _on_both(provisioned, capsys, monkeypatch, "status")
    assert code == aws_code == 0
    assert re.search(r"order-validator -> database\s+up\s+lookup answered", aws), aws
    assert re.search(r"order app\s+up", aws) and re.search(r"database\s+up", aws), aws
    # the tables after the parts, but for the instance's address (locally shown with the name it has on AWS)
    assert aws.split("== network")[1].split("== instance")[0] == local.split("== network")[1].split("== instance")[0]
    assert aws.split("== functions", 1)[1] == local.split("== functions", 1)[1]
    assert "needs confirmation" not in aws


def test_labkit_report_on_an_unconfirmed_aws_lab(provisioned, capsys, monkeypatch, tmp_path):
    with aws_replay.report_in_order(monkeypatch):
        (code, _), (aws_code, _) = _on_both(provisioned, capsys, monkeypatch, "report", "--output",
                                            str(tmp_path / "report.html"))
    assert code == aws_code == 0
    page = (tmp_path / "report.html").read_text()
    assert "Not available" not in page and "needs confirmation" not in page
    assert "<td><b>target</b></td><td>aws</td>" in page
    sections = dict(re.findall(r"<h2>([^<]+)</h2>\n(.*?)(?=<h2>|</body>)", page, re.DOTALL))
    step_summaries = re.findall(r"Step \d+: (\d+)/(\d+) checks passed", sections["Every step&#x27;s checks"])
    assert len(step_summaries) == 13 and all(passed == total for passed, total in step_summaries)
    assert "orders stored in RDS" in sections["Orders and the daily report"]
    assert "tasks done" in sections["Your turn"]


def test_no_aws_call_of_the_replay_reached_aws():
    """The replayed clients are Stubbers: a call without an answer raises before anything is sent."""
    lab = _aws_lab()
    aws_replay.Replay(lab, aws_replay.Recording())
    with pytest.raises(Exception, match="Unexpected API Call"):
        lab.client("sts").get_caller_identity()


def test_a_query_can_only_read(provisioned):
    """database.query is sent unconfirmed on aws as a read: its SQL runs in a read-only transaction, so a write in
    it fails (MySQL error 1792) and changes nothing."""
    from labkit import StepError, database

    lab = provisioned.lab
    before = database.query(lab, "SELECT COUNT(*) AS n FROM orders;")["n"].iloc[0]
    with pytest.raises(StepError, match="1792"):
        database.query(lab, "DELETE FROM orders;")
    assert database.query(lab, "SELECT COUNT(*) AS n FROM orders;")["n"].iloc[0] == before
