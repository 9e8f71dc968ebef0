"""Notebook 15, done as a student does it: each case breaks (again after a fix), its check says not yet until a
fix works, the notebook's own reference fixes pass, a longer timeout or a broad grant is not taken for a fix,
and no probe ever writes an order."""
from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

from labkit import history, iam, troubleshoot, troubleshoot_iam, troubleshoot_nacl
from labkit import troubleshoot_cases as cases
from labkit import troubleshoot_retry as retry
from labkit.localcloud import control
from labkit.troubleshoot_cases import BREAK_TIMEOUT, CASES

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "15_troubleshooting.ipynb"


def _orders(provisioned) -> int:
    with provisioned.db_connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM orders")
        return cur.fetchone()[0]


def _reference_fix(lab, key: str) -> None:
    """The notebook's own folded reference fix for ``key``, run as the notebook runs it with solutions = True."""
    cells = {c.get("id"): c for c in nbformat.read(NOTEBOOK, as_version=4).cells}
    namespace = {"lab": lab, "solutions": True, "troubleshoot": troubleshoot, "troubleshoot_iam": troubleshoot_iam,
                 "iam": iam, "history": history, "cases": cases, "troubleshoot_nacl": troubleshoot_nacl,
                 "retry": retry}
    exec(compile(cells[f"case-{key}-solution"].source, f"15_troubleshooting:{key}", "exec"), namespace)


@pytest.fixture
def probes(provisioned):
    yield provisioned.lab
    troubleshoot.cleanup(provisioned.lab)
    assert troubleshoot.cleanup(provisioned.lab).empty, "nothing of the probes is left"


def test_every_case_breaks_is_not_yet_then_passes_after_the_reference_fix_and_stores_no_order(provisioned, probes):
    lab = probes
    before = _orders(provisioned)
    for key, case in CASES.items():
        symptom = cases.break_it(lab, key)
        result = cases.check_fix(lab, key)
        assert not result.passed and "not yet" in str(result) and result.hint, (key, str(result))
        with pytest.raises(cases.FixNotDone, match="not yet"):
            cases.check_fix(lab, key, require=True)
        if key == "timeout":  # the answer to "after how long?": the whole timeout
            assert symptom.seconds >= BREAK_TIMEOUT and f"Task timed out after {BREAK_TIMEOUT}.00 seconds" in symptom.answer
        if key == "nacl":  # the replies dropped: a wait, then the whole timeout
            assert symptom.seconds >= BREAK_TIMEOUT and f"Task timed out after {BREAK_TIMEOUT}.00 seconds" in symptom.answer
        if key == "rds":  # a dropped connection: the code's own 5 s connect timeout, then its clear error
            assert symptom.seconds >= 5 and symptom.error_type == "DatabaseError"
        for _ in range(2):  # a reference fix run twice changes nothing
            _reference_fix(lab, key)
        result = cases.check_fix(lab, key, require=True)
        assert result.passed and f"Case {case.number}, your fix: passed" in str(result), str(result)
    assert cases.fixes_frame(lab)["passed"].all()
    assert _orders(provisioned) == before, "a probe looks an order up: it never stores one"


def test_a_break_after_a_fix_breaks_again(probes):
    lab = probes
    for key in ("rds", "no-secret-access", "no-vpc-access"):
        cases.break_it(lab, key)
        _reference_fix(lab, key)
        assert cases.check_fix(lab, key).passed
        cases.break_it(lab, key)  # raises BreakNotReproduced unless the symptom is back
        assert not cases.check_fix(lab, key).passed


def test_a_longer_timeout_is_not_a_fix_and_the_check_does_not_wait_for_it(probes):
    lab = probes
    probe = cases.break_it(lab, "timeout").function
    lam = lab.client("lambda")
    lam.update_function_configuration(FunctionName=probe, Timeout=300)
    lam.get_waiter("function_updated_v2").wait(FunctionName=probe)
    started = time.monotonic()
    result = cases.check_fix(lab, "timeout")
    assert time.monotonic() - started < 10, "the blocked path is read from the rules, not waited for"
    assert not result.passed and "blocked" in result.detail and "only waits longer" in result.detail
    troubleshoot.admit_probe(lab, "endpoints")
    result = cases.check_fix(lab, "timeout")
    assert not result.passed and "RDS :3306 is blocked" in result.detail, "the next wall is named too"
    troubleshoot.admit_probe(lab, "rds")  # the other fix: the probe's group let in at both
    result = cases.check_fix(lab, "timeout")
    assert result.passed and "3 s is enough" in result.detail, result.detail


def test_a_broad_grant_is_not_the_least_privilege(probes):
    lab = probes
    cases.break_it(lab, "no-secret-access")
    role = troubleshoot_iam.probe_role_name(lab, "no-secret-access")
    lab.client("iam").attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/SecretsManagerReadWrite")
    result = cases.check_fix(lab, "no-secret-access")
    assert not result.passed and "it works, but" in result.detail and "read other secrets" in result.detail
    lab.client("iam").detach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/SecretsManagerReadWrite")
    arn = lab.client("secretsmanager").describe_secret(SecretId="order-db-secret")["ARN"]
    narrow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                       "Resource": arn.rsplit("-", 1)[0] + "-*"}]}
    lab.client("iam").put_role_policy(RoleName=role, PolicyName="mine", PolicyDocument=json.dumps(narrow))
    assert cases.check_fix(lab, "no-secret-access").passed, "the secret's name with a wildcard suffix is narrow"


def _private_subnets_acls(lab) -> set[tuple[str, bool]]:
    """(ACL id, is it the VPC's default) of each ACL the private subnets are on."""
    from labkit.network import subnet_ids

    acls = lab.client("ec2").describe_network_acls(Filters=[{"Name": "association.subnet-id",
                                                             "Values": sorted(subnet_ids(lab, public=False))}])
    return {(a["NetworkAclId"], a["IsDefault"]) for a in acls["NetworkAcls"]}


def test_the_nacl_case_wants_the_return_rule_and_the_clean_up_puts_the_default_acl_back(probes):
    lab = probes
    ec2 = lab.client("ec2")
    before = _private_subnets_acls(lab)
    assert [default for _, default in before] == [True], "steps 1-13 leave the private subnets on the default ACL"
    cases.break_it(lab, "nacl")
    acl = troubleshoot_nacl.private_acl(lab)["NetworkAclId"]
    assert _private_subnets_acls(lab) == {(acl, False)}
    frame = troubleshoot_nacl.private_acl_frame(lab)
    assert list(frame["direction"]) == ["inbound"] * 4 + ["outbound"] * 3, "inbound first, each list by number"
    assert list(frame["rule"]) == ["100", "110", "120", "*", "100", "110", "*"]
    paths = troubleshoot.probe_paths_frame(lab, troubleshoot.probe_name(lab, "nacl"))
    assert not paths["allowed"].all() and paths["because"].str.contains("network ACL|acl-", case=False).any(), paths
    # a wrong fix: one more inbound rule (the request already gets in); the replies still fall through to "*"
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=130, Egress=False, Protocol="6", RuleAction="allow",
                                 CidrBlock="10.0.0.0/16", PortRange={"From": 0, "To": 65535})
    result = cases.check_fix(lab, "nacl")
    assert not result.passed and "blocked" in result.detail, result.detail
    # another: the subnets back on the default ACL works, but is no fix of the ACL
    troubleshoot_nacl.remove_private_acl(lab)
    result = cases.check_fix(lab, "nacl")
    assert not result.passed and "lock-down is gone" in result.detail, result.detail
    cases.break_it(lab, "nacl")  # the ACL again, with exactly the lesson's rules (rule 130 taken back)
    assert not cases.check_fix(lab, "nacl").passed
    _reference_fix(lab, "nacl")
    result = cases.check_fix(lab, "nacl", require=True)
    assert result.passed and "still guards the private subnets" in result.detail, result.detail
    removed = troubleshoot.cleanup(lab)
    assert {"kind": "network acl", "name": troubleshoot_nacl.acl_name(lab)} in removed.to_dict("records")
    assert _private_subnets_acls(lab) == before, "the private subnets are back on the VPC's default ACL"
    assert troubleshoot_nacl.private_acl(lab) is None, "the case's ACL is deleted"


def test_right_after_an_iam_fix_the_call_is_refused_then_a_retry_works_in_realistic_mode(provisioned, probes):
    """Case 6 in realistic mode: the notebook's cells in order. The switch is on for the case only and back after;
    the attempts right after the fix are refused, a later one works (the order of the answers, not their times)."""
    lab, home = probes, provisioned.home
    assert lab.target.timing()["realistic"] is False, "the lab runs fast by default"
    control.set_timing(None, {"iam_propagation": 20}, home)  # long enough that the first attempt is surely early
    try:
        cases.break_it(lab, "no-secret-access")
        switch = retry.take_aws_time(lab)
        assert switch.switched and switch.before["realistic"] is False and switch.now["realistic"] is True
        assert "realistic" in str(switch) and "before: fast" in str(switch)
        _reference_fix(lab, "no-secret-access")
        attempts = retry.retry_until_works(lab, "no-secret-access", every=1)
        answers = list(attempts.frame()["answer"])
        assert answers[0] == "AccessDeniedException" and answers[-1] == "ok", answers
        assert set(answers[:-1]) == {"AccessDeniedException"} and attempts.worked
        assert list(attempts.frame()["at (s)"]) == sorted(attempts.frame()["at (s)"]), "elapsed time, in order"
        assert "refused" in attempts.summary() and "worked" in attempts.summary()
        assert cases.check_fix(lab, "no-secret-access").passed
        back = retry.restore_timing(lab, switch)
        assert back.now["realistic"] is False and lab.target.timing()["realistic"] is False
        assert not retry.restore_timing(lab, switch).switched, "restoring twice changes nothing"
    finally:
        control.set_timing(False, {"iam_propagation": 8}, home)


def test_take_aws_time_leaves_a_realistic_cloud_realistic(provisioned):
    lab, home = provisioned.lab, provisioned.home
    control.set_timing(True, home=home)
    try:
        switch = retry.take_aws_time(lab)
        assert not switch.switched and str(switch).startswith("Timing unchanged")
        assert retry.restore_timing(lab, switch).now["realistic"] is True, "it was realistic before: it stays so"
    finally:
        control.set_timing(False, home=home)
