"""Notebook 15, done as a student does it: each case breaks (again after a fix), its check says not yet until a
fix works, the notebook's own reference fixes pass, a longer timeout or a broad grant is not taken for a fix,
and no probe ever writes an order."""
from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

from labkit import history, iam, troubleshoot, troubleshoot_iam
from labkit import troubleshoot_cases as cases
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
                 "iam": iam, "history": history, "cases": cases}
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
