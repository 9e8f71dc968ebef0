"""The labkit command as a user runs it: up, check, status, down, and the cloud verbs."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from labkit.localcloud import control
from tests.helpers import free_port

COLUMNS = 100  # a terminal of 100 columns: everything labkit prints fits it (issue 27)


def _fits(output: str, columns: int = COLUMNS) -> str:
    """``output`` once every line is checked to fit ``columns``; its words on one line, for searching."""
    wide = [line for line in output.splitlines() if len(line) > columns]
    assert not wide, f"{len(wide)} lines wider than {columns} columns, e.g. {wide[0]!r}"
    return " ".join(output.split())


def test_up_check_status_down(tmp_path):
    env = {**os.environ, "LABKIT_HOME": str(tmp_path), "LABKIT_CLOUD_PORT": str(free_port()),
           "LABKIT_APP_PORT": str(free_port()), "COLUMNS": str(COLUMNS)}

    def labkit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "labkit.cli", *args], env=env, capture_output=True, text=True,
                              timeout=300)

    try:
        up = labkit("up", "--through", "3", "--lab", "cli-lab")
        assert up.returncode == 0, up.stderr
        assert "step  1: Create VPC" in up.stdout and "16/16 checks passed" in up.stdout
        check = labkit("check", "--through", "3", "--lab", "cli-lab")
        assert check.returncode == 0 and "16/16 checks passed" in _fits(check.stdout)
        tasks = labkit("tasks", "--lab", "cli-lab")  # a half-built lab: every task is open, none fails the command
        shown = _fits(tasks.stdout)
        assert tasks.returncode == 0 and "0/13 tasks passed" in shown, tasks.stdout + tasks.stderr
        assert "owner tag" in shown and "the lab has no instance yet" in shown and "hint: ec2.create_tags(" in shown
        assert tasks.stdout.count("✗ not yet") == 13
        as_json = json.loads(labkit("tasks", "--lab", "cli-lab", "--json").stdout)  # one lab's tasks, with records
        assert [t["step"] for t in as_json["tasks"]] == list(range(1, 14)) and as_json["passed"] == 0
        assert as_json["lab"] == "cli-lab" and as_json["solutions_ran"] == []
        assert {"first_passed", "by", "solution_ran", "hint"} <= set(as_json["tasks"][0])
        status = labkit("status", "--lab", "cli-lab")
        shown = _fits(status.stdout)
        assert status.returncode == 0 and "cli-lab-vpc" in shown and "== checks" in shown
        assert "no scheduled rule or schedule has fired yet" in labkit("cloud", "schedule").stdout
        failed = labkit("up", "--through", "5", "--lab", "other-lab")
        assert failed.returncode == 1 and "Traceback" not in failed.stderr
        assert "Step 2: the db subnet group order-processing-app-SG already exists" in failed.stderr
        assert "belongs to lab 'cli-lab'" in failed.stderr and "How to fix" in failed.stderr
        down = labkit("down", "--lab", "cli-lab")
        assert down.returncode == 0 and "nothing of the lab is left" in down.stdout
    finally:
        control.stop_cloud(tmp_path)


def test_what_a_100_column_terminal_shows_of_a_whole_lab(provisioned):
    """`labkit tasks`, `labkit status` and `labkit cloud status` of the full lab fit 100 columns: the tasks one block
    each, the cloud's state a section per service (not JSON, which --json still gives), the instance said to be a
    sandbox on this computer."""
    import json

    lab = provisioned.lab
    env = {**os.environ, "LABKIT_HOME": str(provisioned.home), "LABKIT_CLOUD_PORT": str(lab.config.cloud_port),
           "LABKIT_APP_PORT": str(lab.config.app_port), "COLUMNS": str(COLUMNS)}

    def labkit(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "labkit.cli", *args], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    tasks = _fits(labkit("tasks", "--lab", lab.name))
    assert "13 ✗ not yet Run the report every 12 hours the rule's schedule rate(1 day) fires every 24 h" in tasks
    status = _fits(labkit("status", "--lab", lab.name))
    assert "== instance" in status and "runs as: a sandbox on this computer, not a virtual machine" in status
    from labkit import compute

    instance = compute.instance_frame(lab).iloc[0]  # step 5's table: Canonical's image, run as a local sandbox
    assert instance["image"].startswith("ami-") and instance["runs as"].startswith("a sandbox on this computer")
    cloud = labkit("cloud", "status")
    shown = _fits(cloud)
    assert "{" not in cloud and "rds" in cloud.splitlines() and "lambda" in cloud.splitlines()
    assert f"{lab.name}-db: port" in shown and "order-validator: idle" in shown
    raw = labkit("cloud", "status", "--json")
    assert json.loads(raw[raw.index("{"):])["rds"]["instances"]


def test_the_readmes_aws_cli_commands_reach_the_local_cloud(provisioned, tmp_path):
    """README: `eval "$(labkit cloud env)"`, then `aws rds describe-events --source-type db-instance`. pip's AWS CLI v1
    (the one `make setup` installs) ignores AWS_ENDPOINT_URL for rds in us-east-1 and went to rds.amazonaws.com; the
    `aws` that `labkit cloud env` puts first on PATH passes --endpoint-url. A shell with nothing else set up: no AWS
    variable, no ~/.aws, PATH without the project's .venv (no request leaves 127.0.0.1)."""
    import json
    from pathlib import Path

    lab = provisioned.lab
    labkit = Path(sys.executable).with_name("labkit")
    script = (f'eval "$({labkit} cloud env --home {provisioned.home})" && command -v aws && '
              "aws rds describe-events --source-type db-instance && "
              "aws rds describe-db-instances --query 'DBInstances[].DBInstanceIdentifier' && "
              "aws s3api list-buckets --query 'Buckets[].Name' && "
              "aws sts get-caller-identity --query Arn --output text && "
              # as the notebooks' call tables write it (AWS CLI v2's option; v1 has none and sends the payload raw)
              "aws lambda invoke --function-name order-validator --cli-binary-format raw-in-base64-out "
              "--payload '{\"find_order_id\": \"3f1c2a9e-8d4b-4c6e-9a8f-1b2c3d4e5f60\"}' response.json "
              "--query StatusCode && cat response.json")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"}
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    where, rest = done.stdout.split("\n", 1)
    assert where == str(provisioned.home.resolve() / "bin" / "aws")
    decoder, documents, position = json.JSONDecoder(), [], 0
    while rest[position:].strip().startswith(("{", "[")):
        position += len(rest[position:]) - len(rest[position:].lstrip())
        document, position = decoder.raw_decode(rest, position)
        documents.append(document)
    events, databases, buckets = documents
    db = f"{lab.name}-db"
    assert db in {e["SourceIdentifier"] for e in events["Events"]}, events
    assert "DB instance created." in {e["Message"] for e in events["Events"] if e["SourceIdentifier"] == db}
    assert databases == [db] and any(name.startswith(f"{lab.name}-reports-") for name in buckets)
    identity, status, answer = rest[position:].strip().split("\n")
    assert identity == "arn:aws:iam::123456789012:user/lab-admin" and status == "200"
    assert json.loads(answer) == {"status": "not_found", "order_id": "3f1c2a9e-8d4b-4c6e-9a8f-1b2c3d4e5f60"}
