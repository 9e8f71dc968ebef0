"""The shell the lab runs on the EC2 instance: apt waits for cloud-init and for the dpkg lock (issue 13 item 7)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from labkit import compute

ROOT = Path(__file__).resolve().parents[2]


def _fake(bin_dir: Path, name: str, log: Path) -> None:
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n')
    path.chmod(0o755)


def test_apt_install_waits_for_cloud_init_and_the_dpkg_lock(tmp_path):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name in ("apt-get", "cloud-init"):
        _fake(bin_dir, name, log)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    subprocess.run(["sh", "-c", compute.PRELUDE + "apt_install mysql-client"], env=env, check=True)
    calls = log.read_text().splitlines()
    assert calls[0] == "cloud-init status --wait"
    assert calls[1:] == ["apt-get -o DPkg::Lock::Timeout=600 update -qq",
                         "apt-get -o DPkg::Lock::Timeout=600 install -y -qq mysql-client"]


def test_every_apt_call_in_labkit_goes_through_apt_install():
    for path in (ROOT / "labkit").glob("*.py"):
        for line in path.read_text().splitlines():
            if re.search(r"\bapt-get\b", line):
                assert "DPkg::Lock::Timeout" in line, f"{path.name}: {line.strip()}"
