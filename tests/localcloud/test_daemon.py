"""The daemon itself: start/stop/status/reset/env, health, stale pid files, busy ports."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request

import pytest

from labkit.errors import CloudError
from labkit.localcloud import control
from tests.conftest import free_port, start_test_cloud, stop_test_cloud


def test_start_is_idempotent_and_health_answers(own_cloud):
    again = control.start_cloud(home=own_cloud.home)
    assert again.pid == own_cloud.status.pid
    with urllib.request.urlopen(f"{own_cloud.endpoint}/_labkit/health", timeout=5) as resp:
        assert resp.status == 200
        health = json.loads(resp.read())
    assert health["status"] == "ok" and health["port"] == own_cloud.status.port


def test_listens_on_loopback_only(own_cloud):
    out = subprocess.run(["ss", "-ltnH", f"sport = :{own_cloud.status.port}"], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("ss is not available")
    local_addresses = [line.split()[3] for line in out.stdout.splitlines()]
    assert local_addresses == [f"127.0.0.1:{own_cloud.status.port}"]


def test_busy_port_gives_a_clear_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(CloudError, match=f"port {port}.*already in use"):
            control.start_cloud(port=port, home=tmp_path)


def test_stale_pid_file_is_ignored(tmp_path):
    (tmp_path / "cloud.json").write_text(json.dumps({"pid": 999999, "port": 1, "cloud_id": "gone"}))
    assert not control.cloud_status(tmp_path).running
    cloud = start_test_cloud(tmp_path)
    try:
        assert control.cloud_status(tmp_path).running
    finally:
        stop_test_cloud(cloud)


def test_env_lines_point_at_the_cloud(own_cloud):
    env = control.cloud_env(own_cloud.home)
    assert env["AWS_ENDPOINT_URL"] == own_cloud.endpoint
    out = subprocess.run([sys.executable, "-m", "labkit.cli", "cloud", "env", "--home", str(own_cloud.home)],
                         capture_output=True, text=True, check=True).stdout
    assert f"export AWS_ENDPOINT_URL={own_cloud.endpoint}" in out


def test_cli_status_and_stop(tmp_path):
    port = free_port()
    run = lambda *a: subprocess.run([sys.executable, "-m", "labkit.cli", "cloud", *a, "--home", str(tmp_path)],
                                    capture_output=True, text=True, env={**os.environ, "LABKIT_CLOUD_PORT": str(port)})
    assert run("start").returncode == 0
    try:
        status = run("status")
        assert status.returncode == 0 and f"127.0.0.1:{port}" in status.stdout
    finally:
        assert "stopped" in run("stop").stdout
    assert run("status").returncode == 3


def test_reset_empties_state(own_cloud):
    s3 = own_cloud.client("s3")
    s3.create_bucket(Bucket="reset-me")
    control.reset_cloud(own_cloud.home)
    assert s3.list_buckets()["Buckets"] == []
