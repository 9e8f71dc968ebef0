""""Your turn": each task's check says not yet on a fresh lab and passed after the notebook's own reference
solution (the committed solution cell, run twice: solutions are idempotent); a half-done or wrong answer
says not yet; and a notebook whose task is left open still runs green, showing "not yet"."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from labkit import functions, iam, schedule, tasks
from labkit.names import SG_NAMES

ROOT = Path(__file__).resolve().parents[2]
SSM_STEPS = {5, 6, 7, 8}  # their solutions take seconds (SSM commands): run once here


def _notebook(step: int) -> Path:
    return next((ROOT / "notebooks").glob(f"{step:02d}_*.ipynb"))


def _solution(step: int) -> str:
    cells = nbformat.read(_notebook(step), as_version=4).cells
    return next(c.source for c in cells if c.get("id") == f"your-turn-{step:02d}-solution")


def _lab_env(monkeypatch, provisioned) -> None:
    lab = provisioned.lab
    monkeypatch.setenv("LABKIT_HOME", str(provisioned.home))
    monkeypatch.setenv("LABKIT_CLOUD_PORT", str(lab.config.cloud_port))
    monkeypatch.setenv("LABKIT_APP_PORT", str(lab.config.app_port))


def test_an_open_task_leaves_its_notebook_green_and_says_not_yet(provisioned, monkeypatch, tmp_path):
    import papermill

    lab = provisioned.lab
    _lab_env(monkeypatch, provisioned)
    out = tmp_path / "13.ipynb"
    papermill.execute_notebook(str(_notebook(13)), str(out), kernel_name="python3", progress_bar=False,
                               parameters={"target": "local", "lab_name": lab.name, "region": lab.region,
                                           "solutions": False}, cwd=str(ROOT / "notebooks"))
    cells = {c.get("id"): c for c in nbformat.read(out, as_version=4).cells}
    shown = json.dumps(cells["your-turn-13-check"].outputs)
    assert "not yet" in shown and "Hint" in shown, shown
    assert "rate(1 day)" in shown, "the check says what the cloud holds now"


def test_each_task_is_not_yet_then_passes_after_its_reference_solution(provisioned):
    lab = provisioned.lab
    before = tasks.tasks_frame(lab)
    assert list(before["step"]) == list(range(1, 14))
    assert not before["passed"].any(), before.to_string()
    assert before["hint"].str.len().gt(0).all()
    functions.invoke(lab, iam.REPORT_FUNCTION, schedule.manual_window(lab, hours=1))  # step 12's log group
    try:
        for step in range(1, 14):
            for _ in range(1 if step in SSM_STEPS else 2):  # twice: a solution re-run changes nothing
                exec(compile(_solution(step), _notebook(step).name, "exec"), {"lab": lab, "solutions": True})
            result = tasks.task_check(step, lab, require=True)
            assert result.passed and "passed" in str(result), str(result)
        assert tasks.tasks_frame(lab)["passed"].all()
        assert tasks.tasks_frame(lab)["hint"].eq("").all()
    finally:
        _undo_what_other_tests_rely_on(lab)
    assert not tasks.task_check(13, lab).passed


def _undo_what_other_tests_rely_on(lab) -> None:
    """The shared lab again as steps 3, 10 and 13 made it (tags, lifecycle and log retention change nothing)."""
    ec2 = lab.client("ec2")
    group = ec2.describe_security_groups(Filters=[*lab.tag_filter(), {"Name": "group-name",
                                                                      "Values": [SG_NAMES["ec2"]]}])["SecurityGroups"][0]
    https = [p for p in group["IpPermissions"] if p.get("FromPort") == 443]
    if https:
        ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=https)
    functions.create_order_validator(lab)
    schedule.create_schedule(lab)


def test_a_wrong_answer_says_not_yet_with_what_the_cloud_shows(provisioned):
    lab = provisioned.lab
    ec2 = lab.client("ec2")
    group_id = ec2.describe_security_groups(Filters=[*lab.tag_filter(), {"Name": "group-name",
                                                                         "Values": [SG_NAMES["ec2"]]}])["SecurityGroups"][0]["GroupId"]
    wide = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=wide)
    try:
        result = tasks.task_check(3, lab)
        assert not result.passed and "0.0.0.0/0" in result.detail and "not yet" in str(result)
        with pytest.raises(tasks.TaskNotDone, match="not yet"):
            tasks.task_check(3, lab, require=True)
    finally:
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=wide)
    ports = [{"IpProtocol": "tcp", "FromPort": 400, "ToPort": 500, "IpRanges": [{"CidrIp": "198.51.100.9/32"}]}]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=ports)
    try:
        result = tasks.task_check(3, lab)
        assert not result.passed and "more ports than 443" in result.detail, result.detail
    finally:
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=ports)
    with pytest.raises(tasks.LabkitError, match="no task"):
        tasks.task_check(14, lab)
