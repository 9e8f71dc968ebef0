"""The sandbox's systemd: Restart=, RestartSec=, the start rate limit, status; stop/terminate end everything."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from labkit.localcloud.procs import INSTANCE_MARKER, find_marked, kill_marked
from tests.helpers import free_port, until
from tests.helpers.ec2 import instance_profile, launch, local_get, run_command

SHIM = Path(__file__).resolve().parents[2] / "labkit" / "localcloud" / "ec2" / "systemctl_shim.py"


@pytest.fixture()
def sandbox(tmp_path: Path):
    """A sandbox folder and a systemctl for it; every process it starts is ended afterwards."""
    marker = f"test-{uuid.uuid4()}"
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    env = {**os.environ, "LABKIT_SANDBOX": str(tmp_path), INSTANCE_MARKER: marker}

    def systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-I", str(SHIM), "--as-systemctl", *args], env=env,
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode not in (0, 3):
            raise AssertionError(result.stderr)
        return result

    def write_unit(name: str, text: str) -> None:
        (tmp_path / "etc/systemd/system" / name).write_text(text)

    systemctl.write_unit = write_unit
    try:
        yield systemctl
    finally:
        kill_marked(INSTANCE_MARKER, marker)
        assert not find_marked(INSTANCE_MARKER, marker)


def _show(systemctl, unit: str) -> dict[str, str]:
    out = systemctl("show", unit).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_restart_always_brings_a_killed_service_back_and_status_shows_it(sandbox):
    sandbox.write_unit("sleeper.service", "[Unit]\nDescription=Sleeper\n[Service]\nExecStart=sleep 300\n"
                                          "Restart=always\nRestartSec=1\n")
    sandbox("start", "sleeper")
    first = int(_show(sandbox, "sleeper")["MainPID"])
    os.kill(first, signal.SIGKILL)
    killed_at = time.monotonic()
    second = until(lambda: int(_show(sandbox, "sleeper")["MainPID"]) not in (0, first) and _show(sandbox, "sleeper"),
                   10, 0.05)
    assert time.monotonic() - killed_at >= 0.9  # RestartSec is honoured
    assert second["NRestarts"] == "1" and second["ExecMainStatus"] == "code=killed, status=9/KILL"
    status = sandbox("status", "sleeper").stdout
    assert "Active: active (running)" in status and "(code=killed, status=9/KILL)" in status
    assert "Scheduled restart job, restart counter is at 1." in status
    sandbox("stop", "sleeper")
    assert sandbox("is-active", "sleeper").stdout.strip() == "inactive"


def test_user_is_not_applied_and_the_journal_says_so(sandbox):
    """A unit with User= (the lab's app: DynamicUser=yes) starts as the cloud's own user, as root too: the local
    image cannot make or switch to the instance's users; its journal says which user it runs as instead."""
    sandbox.write_unit("app.service", "[Unit]\nDescription=App\n[Service]\nUser=orders-app\nGroup=orders-app\n"
                                      "DynamicUser=yes\nExecStart=sleep 300\n")
    sandbox("start", "app")
    pid = int(until(lambda: _show(sandbox, "app")["MainPID"] != "0" and _show(sandbox, "app"), 10, 0.05)["MainPID"])
    assert os.stat(f"/proc/{pid}").st_uid == os.getuid()
    status = sandbox("status", "app").stdout
    assert "Active: active (running)" in status
    assert ("app.service: User=orders-app is not applied: the local image runs every process as the local cloud's "
            "user (") in status and f"uid {os.getuid()}); on EC2 systemd starts the unit as orders-app." in status
    sandbox("stop", "app")


def test_restart_no_and_on_failure_follow_the_exit_cause(sandbox):
    sandbox.write_unit("once.service", "[Service]\nExecStart=sh -c 'exit 4'\n")
    sandbox.write_unit("clean.service", "[Service]\nExecStart=sh -c 'exit 0'\nRestart=on-failure\n")
    sandbox("start", "once")
    sandbox("start", "clean")
    until(lambda: sandbox("is-active", "once").stdout.strip() == "failed", 10, 0.05)
    assert "Active: failed (Result: exit-code)" in sandbox("status", "once").stdout
    until(lambda: sandbox("is-active", "clean").stdout.strip() == "inactive", 10, 0.05)
    assert _show(sandbox, "clean")["NRestarts"] == "0"


def test_a_crash_loop_hits_the_start_rate_limit(sandbox):
    sandbox.write_unit("crash.service", "[Unit]\nStartLimitIntervalSec=30\nStartLimitBurst=3\n"
                                        "[Service]\nExecStart=sh -c 'exit 1'\nRestart=always\nRestartSec=100ms\n")
    sandbox("start", "crash")
    until(lambda: _show(sandbox, "crash")["Result"] == "start-limit-hit", 10, 0.05)
    status = sandbox("status", "crash").stdout
    assert "Active: failed (Result: start-limit-hit)" in status and "Start request repeated too quickly." in status
    again = sandbox("start", "crash", check=False)
    assert again.returncode == 1 and "attempted too often" in again.stderr
    sandbox("reset-failed", "crash")
    sandbox("start", "crash")  # allowed again, and fails again by itself
    until(lambda: _show(sandbox, "crash")["Result"] == "start-limit-hit", 10, 0.05)


def test_the_app_comes_back_after_its_master_is_killed_and_stop_ends_everything(cloud):
    instance_id = launch(cloud, instance_profile(cloud.client("iam"), "restart-profile"))
    port = free_port()
    unit = (f"[Unit]\nDescription=web\n[Service]\nExecStart=python3 -m http.server {port} --bind 127.0.0.1\n"
            "Restart=always\nRestartSec=1\n[Install]\nWantedBy=multi-user.target\n")
    result = run_command(cloud, instance_id, [f"cat > $HOME/web.service <<'EOF'\n{unit}EOF",
                                              "systemctl enable --now $HOME/web.service",
                                              "systemctl show web -p MainPID"])
    assert result["Status"] == "Success", result["StandardErrorContent"]
    assert local_get(cloud, instance_id, f"http://127.0.0.1:{port}/") == "200"  # on the instance, as a user would
    os.kill(int(result["StandardOutputContent"].strip().split("=")[1]), signal.SIGKILL)
    killed_at = time.monotonic()
    assert local_get(cloud, instance_id, f"http://127.0.0.1:{port}/", seconds=15) == "200"
    assert time.monotonic() - killed_at < 10
    status = run_command(cloud, instance_id, ["systemctl status web || true"])["StandardOutputContent"]
    assert "restart counter is at 1" in status and "status=9/KILL" in status
    cloud.client("ec2").terminate_instances(InstanceIds=[instance_id])
    assert not find_marked(INSTANCE_MARKER, instance_id)  # the supervisor went with the instance, restarting nothing
    time.sleep(1.5)
    assert not find_marked(INSTANCE_MARKER, instance_id)
