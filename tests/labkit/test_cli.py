"""The labkit command as a user runs it: up, check, status, down, and the cloud verbs."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from labkit.localcloud import control
from tests.conftest import free_port


def test_up_check_status_down(tmp_path):
    env = {**os.environ, "LABKIT_HOME": str(tmp_path), "LABKIT_CLOUD_PORT": str(free_port()),
           "LABKIT_APP_PORT": str(free_port())}

    def labkit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "labkit.cli", *args], env=env, capture_output=True, text=True,
                              timeout=300)

    try:
        up = labkit("up", "--through", "3", "--lab", "cli-lab")
        assert up.returncode == 0, up.stderr
        assert "step  1: Create VPC" in up.stdout and "16/16 checks passed" in up.stdout
        check = labkit("check", "--through", "3", "--lab", "cli-lab")
        assert check.returncode == 0 and "16/16 checks passed" in check.stdout
        tasks = labkit("tasks", "--lab", "cli-lab")  # a half-built lab: every task is open, none fails the command
        assert tasks.returncode == 0 and "0/13 tasks passed" in tasks.stdout, tasks.stdout + tasks.stderr
        assert "owner tag" in tasks.stdout and "the lab has no instance yet" in tasks.stdout
        as_json = json.loads(labkit("tasks", "--lab", "cli-lab", "--json").stdout)  # one lab's tasks, with records
        assert [t["step"] for t in as_json["tasks"]] == list(range(1, 14)) and as_json["passed"] == 0
        assert as_json["lab"] == "cli-lab" and as_json["solutions_ran"] == []
        assert {"first_passed", "by", "solution_ran", "hint"} <= set(as_json["tasks"][0])
        status = labkit("status", "--lab", "cli-lab")
        assert status.returncode == 0 and "cli-lab-vpc" in status.stdout and "== checks" in status.stdout
        assert "no scheduled rule has fired yet" in labkit("cloud", "schedule").stdout
        failed = labkit("up", "--through", "5", "--lab", "other-lab")
        assert failed.returncode == 1 and "Traceback" not in failed.stderr
        assert "Step 2: the db subnet group order-processing-app-SG already exists" in failed.stderr
        assert "belongs to lab 'cli-lab'" in failed.stderr and "How to fix" in failed.stderr
        down = labkit("down", "--lab", "cli-lab")
        assert down.returncode == 0 and "nothing of the lab is left" in down.stdout
    finally:
        control.stop_cloud(tmp_path)
