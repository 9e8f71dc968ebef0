"""Two labs from two clones on one machine, each `labkit up` with defaults: nothing but the clone keeps them apart.

The defaults are the same for both clones (the preferred cloud port and the app port; free ports stand in
for 4566 and 5000, which tests never use): the second clone's cloud takes another port and says so, each
instance serves the app port on its own address, each order lands in its own lab's database, and stopping
one lab leaves the other taking orders.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from labkit import Lab, database
from labkit.localcloud import control
from labkit.localcloud.procs import CLOUD_MARKER, find_marked
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
NOT_CLONED = (".git", ".venv", ".venv-lambda", ".cache", ".labkit", "runs", "__pycache__", "*.egg-info",
              "node_modules", ".pytest_cache")


def _clone(target: Path) -> Path:
    """The project's files as a fresh clone has them, no lab state; what `make setup` builds there (the wheel
    mirror, the preloaded libraries) is this project's, shared read-only."""
    shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(*NOT_CLONED))
    (target / ".cache").mkdir()
    for built in ("wheels", "faketime", "net"):
        if (ROOT / ".cache" / built).exists():
            (target / ".cache" / built).symlink_to(ROOT / ".cache" / built)
    return target


def _labkit(clone: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "labkit.cli", *args], cwd=clone, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _order(url: str, name: str) -> dict:
    request = urllib.request.Request(url + "api/orders", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"customer_name": name, "product": "Isolation", "quantity": 1,
                                                      "amount": "3.00"}).encode())
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 201
        return json.loads(response.read())


def _names(clone: Path) -> list[str]:
    lab = Lab(target="local", home=clone / ".labkit")
    return database.orders_frame(lab)["customer_name"].tolist()


@pytest.mark.timeout(1200)
def test_two_clones_with_defaults_keep_their_orders_apart(tmp_path):
    clones = [_clone(tmp_path / "first"), _clone(tmp_path / "second")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABKIT_", "AWS_ENDPOINT"))}
    env.update({"LABKIT_CLOUD_PORT": str(free_port()), "LABKIT_APP_PORT": str(free_port()),
                "LABKIT_WHEELHOUSE": str(ROOT / ".cache" / "wheels"),
                "LABKIT_LAMBDA_PYTHON": str(ROOT / ".venv-lambda" / "bin" / "python")})
    envs = [{**env, "PYTHONPATH": str(clone)} for clone in clones]
    try:
        # The first clone's cloud holds the preferred port before the second asks for it.
        started = _labkit(clones[0], envs[0], "cloud", "start")
        assert started.wait(60) == 0, started.stdout.read()
        runs = [_labkit(clone, e, "up") for clone, e in zip(clones, envs)]
        outputs = [run.communicate(timeout=1100)[0] for run in runs]
        for run, out in zip(runs, outputs):
            assert run.returncode == 0, out[-3000:]
        homes = [clone / ".labkit" for clone in clones]
        ports = [control.cloud_status(home).port for home in homes]
        assert ports[0] == int(env["LABKIT_CLOUD_PORT"]) and ports[1] != ports[0]
        assert f"port {ports[0]} is taken by another lab's local cloud" in outputs[1]

        urls = []
        for clone, e in zip(clones, envs):
            shown = subprocess.run([sys.executable, "-m", "labkit.cli", "status", "--urls"], cwd=clone, env=e,
                                   capture_output=True, text=True, check=True).stdout
            urls.append(re.search(r"(http://\S+/)", shown).group(1))
        assert urls[0] != urls[1] and all(f":{env['LABKIT_APP_PORT']}/" in url for url in urls), urls

        _order(urls[0], "Only in the first lab")
        _order(urls[1], "Only in the second lab")
        first, second = _names(clones[0]), _names(clones[1])
        assert "Only in the first lab" in first and "Only in the second lab" not in first
        assert "Only in the second lab" in second and "Only in the first lab" not in second

        stopped = subprocess.run([sys.executable, "-m", "labkit.cli", "cloud", "stop"], cwd=clones[0], env=envs[0],
                                 capture_output=True, text=True, check=True)
        assert "local cloud stopped" in stopped.stdout
        _order(urls[1], "After the first lab stopped")
        assert "After the first lab stopped" in _names(clones[1])
    finally:
        for clone in clones:
            status = control.cloud_status(clone / ".labkit")
            control.stop_cloud(clone / ".labkit")
            if status.cloud_id:
                assert not find_marked(CLOUD_MARKER, status.cloud_id)
