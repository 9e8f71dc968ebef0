"""The shell the lab runs on the EC2 instance: apt waits for cloud-init and for the dpkg lock (issue 13 item 7), and
`apt-get update` for the lists lock apt-daily holds (issue 25 item 3)."""
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


# apt-get as Ubuntu 22.04's apt 2.4 answers `update` while apt-daily holds the lists lock: at once, exit 100.
LOCKED_APT = """#!/bin/sh
echo "apt-get $*" >> "{log}"
if [ "$3" = update ] && [ "$(wc -l < "{log}")" -le {locked} ]; then
  echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1234 (apt-get)" >&2
  echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
  exit 100
fi
if [ "$3" = update ] && [ -n "{other}" ]; then echo "{other}" >&2; exit 100; fi
"""


def _apt(tmp_path: Path, locked: int, other: str = "") -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(LOCKED_APT.format(log=log, locked=locked, other=other))
    (bin_dir / "apt-get").chmod(0o755)
    _fake(bin_dir, "sleep", log)  # the waits, without waiting
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    done = subprocess.run(["sh", "-c", compute.PRELUDE + "apt_install mysql-client"], env=env, capture_output=True,
                          text=True)
    return done, log.read_text().splitlines()


def test_apt_get_update_waits_for_the_lists_lock(tmp_path):
    done, calls = _apt(tmp_path, locked=3)  # apt-daily holds the lists lock for the first two updates
    assert done.returncode == 0, done.stderr
    update = "apt-get -o DPkg::Lock::Timeout=600 update -qq"
    wait = f"sleep {compute.APT_RETRY_SECONDS}"
    assert calls == [update, wait, update, wait, update, "apt-get -o DPkg::Lock::Timeout=600 install -y -qq mysql-client"]


def test_apt_get_update_gives_up_on_the_lock_after_ten_minutes(tmp_path):
    done, calls = _apt(tmp_path, locked=10_000)
    assert done.returncode == 100 and "Could not get lock /var/lib/apt/lists/lock" in done.stderr
    assert calls.count(f"sleep {compute.APT_RETRY_SECONDS}") * compute.APT_RETRY_SECONDS == 600
    assert not any("install" in call for call in calls)


def test_other_apt_get_update_failures_are_shown_at_once(tmp_path):
    done, calls = _apt(tmp_path, locked=0, other="E: Failed to fetch http://archive.ubuntu.com/ Temporary failure")
    assert done.returncode == 100 and "Temporary failure" in done.stderr
    assert calls == ["apt-get -o DPkg::Lock::Timeout=600 update -qq"]  # no wait, no install


def test_every_apt_call_in_labkit_goes_through_apt_install():
    for path in (ROOT / "labkit").glob("*.py"):
        for line in path.read_text().splitlines():
            if re.search(r"\bapt-get\b", line):
                assert "DPkg::Lock::Timeout" in line, f"{path.name}: {line.strip()}"


def test_the_app_archive_keeps_each_files_time_and_is_the_same_for_the_same_files():
    """Step 8's archive: files keep their modification time (the app's Last-Modified and ETag come from it; at
    1970 a changed style sheet of the same size looked unchanged to a browser), and the same files give the same
    bytes (the instance restarts the app only when the archive's digest changes)."""
    import base64
    import io
    import tarfile

    archive = compute._app_archive()
    assert archive == compute._app_archive()
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(archive))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert {"app.py", "static/style.css", "templates/base.html", "hypercorn.toml"} <= set(members)
    for name, member in members.items():
        assert member.mtime == int((ROOT / "flask_app" / name).stat().st_mtime) > 0, name
        assert (member.uid, member.uname) == (0, ""), name
