"""The daemon itself: start/stop/status/reset/env, health, stale pid files, busy ports."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from labkit.errors import CloudError
from labkit.localcloud import control
from tests.helpers import Cloud, free_port, start_test_cloud, stop_test_cloud


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


def test_the_port_a_killed_daemon_of_this_home_still_holds_is_awaited(tmp_path):
    """Right after a kill -9 the daemon's socket stays open while its threads end: a start on its port waits for
    it (a few seconds at most) instead of calling the port taken; a port held for longer is still refused."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    (tmp_path / "cloud.json").write_text(json.dumps({"pid": 999999, "port": port, "cloud_id": "killed"}))
    releaser = threading.Timer(1.0, held.close)
    releaser.start()
    try:
        cloud = Cloud(tmp_path, control.start_cloud(port=port, home=tmp_path))
    finally:
        releaser.join()
    try:
        assert cloud.status.port == port and control.cloud_status(tmp_path).running
    finally:
        stop_test_cloud(cloud)
    with socket.socket() as other:  # the same port held by something else for good: refused, after the wait
        other.bind(("127.0.0.1", port))
        other.listen()
        (tmp_path / "cloud.json").write_text(json.dumps({"pid": 999999, "port": port, "cloud_id": "killed"}))
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
    def run(*a: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "labkit.cli", "cloud", *a, "--home", str(tmp_path)],
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


def test_taken_default_port_is_detoured_and_said(tmp_path, own_cloud, monkeypatch):
    """The default port held by another lab's cloud: this lab picks a free one, says so, and finds it again."""
    monkeypatch.setenv("LABKIT_CLOUD_PORT", str(own_cloud.status.port))  # stands in for 4566 (never in tests)
    home = tmp_path / "second-clone"
    second = control.start_cloud(home=home)
    try:
        assert second.port != own_cloud.status.port and second.running
        assert f"port {own_cloud.status.port} is taken by another lab's local cloud" in second.note
        assert f"127.0.0.1:{second.port}" in second.note
        assert control.start_cloud(home=home).port == second.port  # the clone's next command finds its own cloud
        out = subprocess.run([sys.executable, "-m", "labkit.cli", "cloud", "env", "--home", str(home)],
                             capture_output=True, text=True, check=True).stdout
        assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{second.port}" in out
        assert control.cloud_status(own_cloud.home).running  # the first lab is untouched
    finally:
        control.stop_cloud(home)


def test_explicit_port_that_is_taken_is_refused_with_the_holder(tmp_path, own_cloud):
    with pytest.raises(CloudError, match="already in use by another lab's local cloud") as caught:
        control.start_cloud(port=own_cloud.status.port, home=tmp_path / "other")
    assert "leave the port out" in str(caught.value)


def test_state_folder_is_private(own_cloud):
    assert own_cloud.home.stat().st_mode & 0o777 == 0o700
    assert (own_cloud.home / "cloud.json").stat().st_mode & 0o077 == 0


def test_control_api_needs_the_owners_token(own_cloud):
    """Another account on the machine reaches 127.0.0.1 too: without the token it cannot stop or reset the cloud."""
    for path in ("/_labkit/shutdown", "/_labkit/reset", "/_labkit/clock/advance"):
        request = urllib.request.Request(own_cloud.endpoint + path, data=b"{}", method="POST",
                                         headers={"X-Labkit-Token": "guessed"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 403
    assert control.cloud_status(own_cloud.home).running
    assert own_cloud.request("GET", "/_labkit/clock")["now"]  # the owner, through the state file, is let in


def test_a_port_taken_while_the_cloud_starts_is_detoured(tmp_path, own_cloud, monkeypatch):
    """Two labs starting at the same moment both see the preferred port free; the one that loses picks another."""
    monkeypatch.setenv("LABKIT_CLOUD_PORT", str(own_cloud.status.port))
    real_free, looks = control._port_free, []

    def racing(port: int) -> bool:
        looks.append(port)
        return True if len(looks) <= 2 else real_free(port)  # the first two looks come before the other lab binds

    monkeypatch.setattr(control, "_port_free", racing)
    home = tmp_path / "racing"
    try:
        started = control.start_cloud(home=home)
        assert started.running and started.port != own_cloud.status.port
        assert "is taken by another lab's local cloud" in started.note
    finally:
        control.stop_cloud(home)
