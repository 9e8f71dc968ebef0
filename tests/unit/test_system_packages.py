"""scripts/ensure-system-packages.sh on a machine without the lab's system packages, as a student would run it.

The packages are hidden for real (a private mount namespace puts empty folders over /usr/sbin and
libfaketime's folders, and PATH holds only the shell's basics, not even python3), and the script runs as an unprivileged
account: it must stop and print the one apt command that installs everything missing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ensure-system-packages.sh"
HIDDEN = ["/usr/sbin", "/usr/local/sbin", *(str(p) for p in Path("/usr/lib").glob("*/faketime")), "/usr/lib/faketime"]
BASICS = ("bash", "id", "cat", "dirname")


@pytest.fixture()
def bare_path():
    """A PATH folder another account can read, with the shell's basics only (no python3 either)."""
    bin_dir = Path(tempfile.mkdtemp(prefix="labkit-bare-path-"))
    try:
        for tool in BASICS:
            (bin_dir / tool).symlink_to(shutil.which(tool))
        bin_dir.chmod(0o755)
        yield bin_dir
    finally:
        shutil.rmtree(bin_dir)


def test_a_student_without_the_packages_is_told_the_one_apt_command(bare_path):
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        pytest.skip("needs root to hide the packages in a private mount namespace and to drop to another account")
    bin_dir = bare_path
    mounts = " && ".join(f"mount -t tmpfs none {d}" for d in HIDDEN if os.path.isdir(d))
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         f'{mounts} && exec setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH="$BARE" "$BARE/bash" "$SCRIPT"'],
        env={"PATH": os.environ["PATH"], "BARE": str(bin_dir), "SCRIPT": str(SCRIPT)},
        capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stdout + run.stderr
    # What `make lab` needs, and only that: the browser tests' chromium and the Hub's npm come with their targets.
    assert ("    sudo apt-get install -y python3-venv mariadb-server mariadb-client libfaketime faketime gcc libc6-dev\n"
            ) in run.stderr, run.stderr
    assert "installing" not in run.stdout


@pytest.mark.parametrize("what", ["lab", "browser", "hub"])
def test_nothing_is_said_when_everything_is_there(what):
    if not (shutil.which("cc") and shutil.which("node") and shutil.which("chromedriver")):
        pytest.skip("this machine lacks some of the packages")
    run = subprocess.run(["bash", str(SCRIPT), what], capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


def test_make_lab_installs_nothing_only_the_tests_or_the_classroom_need():
    """`make setup` (what `make lab` runs): no chromium, no npm, no pytest, no JupyterHub; their targets do."""
    def planned(target: str) -> str:
        run = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout

    lab, tests, classroom = planned("setup"), planned("test-setup"), planned("classroom-setup")
    for needed_elsewhere in ("ensure-system-packages.sh browser", "ensure-system-packages.sh hub", "ensure-hub-proxy",
                             ".[dev", ".[classroom]"):
        assert needed_elsewhere not in lab
    assert "ensure-system-packages.sh browser" in tests and ".[dev,classroom]" in tests  # tests import nbgitpuller
    assert "ensure-hub-proxy" in classroom and ".[classroom]" in classroom


def test_repo2docker_images_get_every_package_the_lab_needs():
    """apt.txt (repo2docker's system packages) holds what the script would install, the lab's needs at least."""
    listed = {line.strip() for line in (ROOT / "apt.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert {"mariadb-server", "mariadb-client", "libfaketime", "faketime", "gcc", "libc6-dev"} <= listed
