"""A checkpoint's archive is extracted only inside the lab's folder, on every Python (Debian 12's 3.11.2, which a
classroom Hub's students run, has no ``extractall(filter=...)``)."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from labkit.errors import CheckpointError
from labkit.localcloud.checkpoints import extract_inside


def _archive(path: Path, *members: tuple[str, str, bytes | str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                body = data if isinstance(data, bytes) else data.encode()
                info.size = len(body)
                archive.addfile(info, io.BytesIO(body))
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
                archive.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                archive.addfile(info)
    return path


@pytest.fixture(params=["with the filter", "without the filter"])
def python(request, monkeypatch):
    if request.param == "without the filter":
        monkeypatch.delattr(tarfile, "tar_filter")
    return request.param


def test_a_checkpoint_made_by_snapshot_is_extracted(tmp_path, python):
    source = _archive(tmp_path / "ok.tgz", ("file", "state/manifest.json", "{}"),
                      ("symlink", "state/current", "manifest.json"),
                      ("symlink", "files/venv/bin/python3", "/usr/bin/python3"))  # a venv links its interpreter
    folder = tmp_path / "staging"
    folder.mkdir()
    with tarfile.open(source, "r:gz") as archive:
        extract_inside(archive, folder, source)
    assert (folder / "state" / "manifest.json").read_text() == "{}"
    assert (folder / "state" / "current").resolve() == (folder / "state" / "manifest.json").resolve()
    assert str((folder / "files" / "venv" / "bin" / "python3").readlink()) == "/usr/bin/python3"


@pytest.mark.parametrize("member", [("file", "../outside.txt", "x"), ("file", "/tmp/absolute.txt", "x"),
                                    ("file", "state/../../outside.txt", "x"),
                                    ("through-link", "state/out/written.txt", "OUTSIDE"), ("fifo", "state/pipe", "")],
                         ids=["dot-dot", "absolute", "nested-dot-dot", "through-a-link", "fifo"])
def test_a_member_outside_the_folder_or_not_a_file_is_refused_and_nothing_is_written(tmp_path, python, member):
    members = [("file", "state/first.txt", "kept out"), member]
    if member[0] == "through-link":  # a link to a folder outside, then a file written through it
        (tmp_path / "outside-dir").mkdir()
        members = [("file", "state/first.txt", "kept out"), ("symlink", "state/out", str(tmp_path / "outside-dir")),
                   ("file", member[1], "written through the link")]
    source = _archive(tmp_path / "bad.tgz", *members)
    folder = tmp_path / "deep" / "staging"
    folder.mkdir(parents=True)
    with tarfile.open(source, "r:gz") as archive, pytest.raises(CheckpointError, match="outside the lab's folder"):
        extract_inside(archive, folder, source)
    assert list(folder.iterdir()) == []  # refused before anything was extracted
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "deep" / "outside.txt").exists()
    assert not (tmp_path / "outside-dir" / "written.txt").exists()
