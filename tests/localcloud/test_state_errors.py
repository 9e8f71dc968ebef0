"""Issue 23, points 3 and 5: a saved state that cannot be read (cut short, changed, written by another moto, not whole)
stops `labkit cloud start` with a clear message naming the file and the two ways on, and an exit status of its own,
never a traceback; `--fresh` moves it aside and starts empty; a checkpoint that cannot be restored is refused before
the lab is touched."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest

from labkit.localcloud import control
from tests.helpers import free_port, start_test_cloud, stop_test_cloud

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def saved_home(tmp_path_factory) -> Path:
    """A lab with something in it, stopped cleanly: its state folder is whole."""
    cloud = start_test_cloud(tmp_path_factory.mktemp("saved") / "home")
    try:
        cloud.client("ec2").create_vpc(CidrBlock="10.23.0.0/16")
    finally:
        stop_test_cloud(cloud)
    return cloud.home


@pytest.fixture()
def home(saved_home: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(saved_home, copy, ignore=shutil.ignore_patterns("*.sock", "logs"))
    return copy


def labkit(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit.cli", "cloud", *args, "--home", str(home)],
                          capture_output=True, text=True, cwd=ROOT, timeout=180)


def start(home: Path, *extra: str) -> subprocess.CompletedProcess:
    return labkit("start", "--port", str(free_port()), *extra, home=home)


def _ec2_file(home: Path) -> Path:
    return next((home / "state" / "moto" / "ec2").rglob("*.pkl"))


def _refused(result: subprocess.CompletedProcess, *said: str) -> None:
    assert result.returncode == 4, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    for text in (*said, "labkit cloud restore NAME", "labkit cloud start --fresh", "labkit up"):
        assert text in result.stderr, (text, result.stderr)


def test_a_file_cut_short_is_refused_by_name(home):
    path = _ec2_file(home)
    path.write_bytes(path.read_bytes()[:-100])  # as a copy or a disk that lost the end
    _refused(start(home), str(path), "damaged")
    assert not control.cloud_status(home).running


def test_a_state_of_another_moto_is_refused_with_what_to_do(home):
    version = home / "state" / "VERSION.json"
    version.write_text(json.dumps({"format": 1, "moto": "5.1.0"}))
    _refused(start(home), str(home / "state"), "moto 5.1.0")


def _load(home: Path) -> None:
    """What the daemon does first (in-process: the refusal itself, without a daemon's start)."""
    from labkit.localcloud import server
    from labkit.localcloud.core.pickling import Rules
    from labkit.localcloud.core.state import Persistence

    Persistence(home, Rules(server.state_lists()), sync=False).load()


def test_a_changed_file_and_a_folder_without_its_version_are_refused_by_name(home):
    from labkit.localcloud.core.statefiles import StateError

    path = _ec2_file(home)
    data = bytearray(path.read_bytes())
    data[-50] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StateError, match=rf"{path} is damaged .*checksum"):
        _load(home)
    (home / "state" / "VERSION.json").unlink()
    with pytest.raises(StateError, match=r"VERSION.json is missing, but .* holds saved records"):
        _load(home)


def test_a_service_s_saved_state_cut_short_or_of_another_shape_is_refused_by_name(home):
    clock = home / "state" / "services" / "clock.json"
    clock.write_text(json.dumps({"offset": "a day"}))  # JSON, but not what this labkit's clock saves
    _refused(start(home), str(clock), "cannot be taken back")
    network = home / "state" / "services" / "network.json"
    network.write_bytes(network.read_bytes()[:-5])  # cut short
    _refused(start(home), str(network), "damaged")
    assert not control.cloud_status(home).running


def test_fresh_moves_the_state_aside_and_starts_an_empty_lab(home):
    path = _ec2_file(home)
    path.write_bytes(b"garbage")
    result = start(home, "--fresh")
    try:
        assert result.returncode == 0, result.stderr
        status = control.cloud_status(home)
        ec2 = boto3.client("ec2", endpoint_url=status.endpoint, region_name="us-east-1",
                           **control.admin_credentials(home))
        assert "10.23.0.0/16" not in [v["CidrBlock"] for v in ec2.describe_vpcs()["Vpcs"]], "the lab is empty"
        aside = [p for p in home.iterdir() if p.name.startswith("state.old-")]
        assert len(aside) == 1 and (aside[0] / path.relative_to(home / "state")).read_bytes() == b"garbage", \
            "the old state is kept aside, not deleted"
    finally:
        assert labkit("stop", home=home).returncode == 0


def _checkpoint(path: Path, manifest: dict) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("MANIFEST.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


def test_a_checkpoint_that_cannot_be_restored_is_refused_before_the_lab_is_touched(home, tmp_path):
    before = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    result = labkit("restore", "no-such-checkpoint", home=home)
    assert result.returncode == 5 and "no checkpoint 'no-such-checkpoint'" in result.stderr, result.stderr
    older = _checkpoint(tmp_path / f"older{os.getpid()}.labkit-checkpoint", {"format": 1, "moto": "5.1.0"})
    result = labkit("restore", str(older), home=home)
    assert result.returncode == 5 and "moto 5.1.0" in result.stderr and "Traceback" not in result.stderr, result.stderr
    stranger = tmp_path / "notes.labkit-checkpoint"
    stranger.write_text("not a checkpoint")
    result = labkit("restore", str(stranger), home=home)
    assert result.returncode == 5 and "is not a labkit checkpoint" in result.stderr, result.stderr
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == before, "the lab is as it was"
