"""Checkpoint files on the client side: where they are, packing one and unpacking one into a lab's folder.

A checkpoint (``labkit cloud snapshot NAME``) is one file, ``NAME.labkit-checkpoint``: a tar (gzip) of the folder
the daemon fills (:mod:`labkit.localcloud.core.checkpoint`: ``MANIFEST.json``, ``state/``, ``files/<service>/``). It
is found by its path, or by its name in the lab's ``checkpoints/`` folder, then in each folder of
``LABKIT_CHECKPOINTS`` (``:``-separated: a class's shared checkpoints, which an instructor hands out).

Restoring one (the cloud stopped) replaces the lab's ``state/`` with the checkpoint's, puts each service's files in
``state/import/<service>/`` and the manifest in ``state/relocate.json``: at its next start the daemon takes them in
(its own addresses and keys, the databases imported, the disks put in place). Nothing here imports moto or a daemon
module. A checkpoint is as sensitive as the lab (it holds the lab's secrets) and as trusted as a program: restoring
one runs what its pickles say, so restore only checkpoints from people you trust (your instructor, yourself).
"""
from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

from labkit.errors import CheckpointError

SUFFIX = ".labkit-checkpoint"
FORMAT = 1
STATE_FORMAT = 1
MANIFEST = "MANIFEST.json"
RELOCATE_FILE = "relocate.json"
FOLDERS_ENV = "LABKIT_CHECKPOINTS"


def folders(home: Path) -> list[Path]:
    """Where checkpoints are looked for by name: the lab's own folder, then ``LABKIT_CHECKPOINTS``."""
    extra = [Path(p) for p in os.environ.get(FOLDERS_ENV, "").split(":") if p]
    return [home / "checkpoints", *extra]


def _is_path(name: str) -> bool:
    return "/" in name or name.endswith(SUFFIX)


def destination(name: str, home: Path) -> Path:
    """Where ``labkit cloud snapshot NAME`` writes: the path NAME, or the lab's ``checkpoints/NAME...``."""
    if not name or name.startswith("."):
        raise CheckpointError(f"{name!r} is not a checkpoint name", "name it with letters, digits, - and _")
    if _is_path(name):
        path = Path(name).expanduser().resolve()
        return path if path.name.endswith(SUFFIX) else path.with_name(path.name + SUFFIX)
    if not all(c.isalnum() or c in "-_." for c in name):
        raise CheckpointError(f"{name!r} is not a checkpoint name", "name it with letters, digits, - and _")
    return home / "checkpoints" / f"{name}{SUFFIX}"


def locate(name: str, home: Path) -> Path:
    """The checkpoint file ``name`` names; CheckpointError (listing those there are) when there is none."""
    if _is_path(name):
        path = Path(name).expanduser().resolve()
        if path.is_file():
            return path
    else:
        for folder in folders(home):
            path = folder / f"{name}{SUFFIX}"
            if path.is_file():
                return path
    known = ", ".join(sorted(c["name"] for c in listing(home))) or "none"
    raise CheckpointError(f"no checkpoint {name!r} (looked in {', '.join(str(f) for f in folders(home))}; "
                          f"there are: {known})", "make one with `labkit cloud snapshot NAME`, or give its path")


def listing(home: Path) -> list[dict[str, Any]]:
    """The checkpoints found by name: name, path, size and when the file was written."""
    found = []
    for folder in folders(home):
        for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
            stat = path.stat()
            found.append({"name": path.name[:-len(SUFFIX)], "path": str(path), "bytes": stat.st_size,
                          "written": time.strftime("%Y-%m-%d %H:%M", time.localtime(stat.st_mtime))})
    return found


def pack(staging: Path, target: Path) -> int:
    """One file from the checkpoint's folder, written whole or not at all; returns its size."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)  # 0600: it holds the lab's secrets
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as archive:
            archive.add(staging / MANIFEST, arcname=MANIFEST)  # first: read without unpacking the rest
            for entry in sorted(staging.iterdir()):
                if entry.name != MANIFEST:
                    archive.add(entry, arcname=entry.name)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target.stat().st_size


def manifest(source: Path) -> dict[str, Any]:
    """A checkpoint's manifest; CheckpointError when the file is not a checkpoint this labkit reads."""
    try:
        with tarfile.open(source, "r:gz") as archive:
            member = archive.extractfile(MANIFEST)
            found = json.load(member) if member is not None else None
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{source} is not a labkit checkpoint ({exc})",
                              "give a file made by `labkit cloud snapshot`") from exc
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise CheckpointError(f"{source} is a checkpoint of format {(found or {}).get('format')}; this labkit reads "
                              f"format {FORMAT}", "make the checkpoint again with this labkit")
    return found


def check_versions(found: dict[str, Any], source: Path, moto_version: str) -> None:
    """Refuse a checkpoint whose state this labkit cannot load, before the lab is touched."""
    if found.get("format") != FORMAT or found.get("moto") != moto_version:
        raise CheckpointError(
            f"{source} holds a lab saved with state format {found.get('format')} and moto {found.get('moto')}; "
            f"this labkit runs moto {moto_version} and cannot load it",
            "make the checkpoint again with this labkit (the same `make setup`), or build the lab with `labkit up`")


def extract_inside(archive: tarfile.TarFile, folder: Path, source: Path) -> None:
    """Extract ``archive`` into ``folder``, refusing a member that would land outside it: an absolute name, ``..``,
    a path through a symbolic link of the archive, a hard link out, or anything but files, folders and links. A
    symbolic link itself may point anywhere (an instance's venv links its interpreter by absolute path), as with
    Python's ``filter="tar"``, used where it exists (3.11.4 and later); the check runs first on every Python
    (Debian 12's 3.11.2 has no filter)."""
    links: set[PurePosixPath] = set()
    for member in archive.getmembers():
        path = PurePosixPath(member.name)
        through_link = any(PurePosixPath(*path.parts[:n]) in links for n in range(1, len(path.parts)))
        hard_out = member.islnk() and (PurePosixPath(member.linkname).is_absolute()
                                       or ".." in PurePosixPath(member.linkname).parts)
        kind_ok = member.isfile() or member.isdir() or member.issym() or member.islnk()
        if path.is_absolute() or ".." in path.parts or through_link or hard_out or not kind_ok:
            raise CheckpointError(f"{source} holds {member.name!r}, which would be written outside the lab's "
                                  "folder or is not a plain file", "restore only checkpoints made by `labkit cloud "
                                  "snapshot`; make the checkpoint again")
        if member.issym():
            links.add(path)
    if hasattr(tarfile, "tar_filter"):
        archive.extractall(folder, filter="tar")
    else:  # Pythons before 3.11.4: every member was checked above
        archive.extractall(folder)


def unpack(source: Path, home: Path) -> dict[str, Any]:
    """Put the checkpoint ``source`` in place of the lab's state in ``home`` (its cloud stopped)."""
    found = manifest(source)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=home))
    try:
        with tarfile.open(source, "r:gz") as archive:
            extract_inside(archive, staging, source)
        if not (staging / "state").is_dir():
            raise CheckpointError(f"{source} holds no state folder", "make the checkpoint again")
        files = staging / "files"
        if files.is_dir():
            files.rename(staging / "state" / "import")
        (staging / "state" / RELOCATE_FILE).write_text(json.dumps(found))
        (staging / "state" / "ERROR").unlink(missing_ok=True)
        old = home / f".state-replaced-{os.getpid()}"
        if (home / "state").exists():
            (home / "state").rename(old)
        (staging / "state").rename(home / "state")
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return found
