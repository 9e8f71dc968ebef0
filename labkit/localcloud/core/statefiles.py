"""The files of a lab's saved state: written whole or not at all, checked when read.

Every state file is written to a private temporary file in its own folder, flushed to the disk (``fdatasync``),
renamed over its name and the folder synced (:func:`write_atomic`): a reader -- the next start, after a crash or a
power cut -- sees the old file or the new one, never a part. A file of moto's records starts with :data:`MAGIC`
and one JSON line (format, what it holds, length and CRC-32 of the rest; :func:`encode`, :func:`decode`), so a
file damaged anyway (a disk error, a half-copied folder) is refused by name instead of being half read. Bodies too
big to rewrite at every save (S3 objects) are files named by their SHA-256 (:class:`BlobStore`), written before the
record that names them. The event history is an append-only :class:`Journal` of JSON lines.

``LABKIT_STATE_SYNC=off`` skips the syncs: the state then survives a crash of the cloud (the kernel keeps what was
written), not a crash of the machine.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import zlib
from pathlib import Path
from typing import Any

FORMAT = 1  # the layout of the state folder and of each file's header; bump on any incompatible change
MAGIC = b"LABKIT-STATE\n"
HOW_TO_GO_ON = ("The lab's databases and instance files are kept. To go on, restore a checkpoint made by this labkit "
                "(`labkit cloud restore NAME`), or start an empty lab with `labkit cloud start --fresh` (the old "
                "state is moved aside, not deleted) and build it again with `labkit up`.")


class StateError(Exception):
    """A state folder or file this labkit cannot read; the message names it (and :data:`HOW_TO_GO_ON` says what to
    do)."""


def sync_enabled() -> bool:
    return os.environ.get("LABKIT_STATE_SYNC", "on").lower() not in ("off", "0", "false", "no")


def write_atomic(path: Path, data: bytes, sync: bool = True) -> None:
    """``path`` holds ``data`` or what it held before, never a part: a private temporary file in the same folder,
    synced, renamed over ``path``, and the folder synced so the rename itself survives a power cut."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if sync:
                out.flush()
                os.fdatasync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync:
        sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode(header: dict[str, Any], payload: bytes) -> bytes:
    """One state file: the magic line, a JSON header (with the payload's length and CRC-32), the payload."""
    meta = {**header, "format": FORMAT, "length": len(payload), "crc32": zlib.crc32(payload)}
    return MAGIC + json.dumps(meta, sort_keys=True).encode() + b"\n" + payload


def decode(path: Path) -> tuple[dict[str, Any], bytes]:
    """The header and payload of a state file; StateError names a file that is not one, or not whole."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StateError(f"{path} cannot be read ({exc.strerror or exc})") from exc
    if not data.startswith(MAGIC):
        raise StateError(f"{path} is not a labkit state file (it does not start as one)")
    line_end = data.find(b"\n", len(MAGIC))
    try:
        meta = json.loads(data[len(MAGIC):line_end]) if line_end > 0 else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise StateError(f"{path} is damaged (its header cannot be read)")
    if meta.get("format") != FORMAT:
        raise StateError(f"{path} is in state format {meta.get('format')}; this labkit reads format {FORMAT}")
    payload = data[line_end + 1:]
    if len(payload) != meta.get("length") or zlib.crc32(payload) != meta.get("crc32"):
        raise StateError(f"{path} is damaged (its length or checksum does not match what was written)")
    return meta, payload


def read_json(path: Path) -> Any:
    """A JSON state file; StateError names one that cannot be read."""
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise StateError(f"{path} cannot be read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise StateError(f"{path} is damaged (not JSON: {exc})") from exc


class BlobStore:
    """Bodies by their SHA-256 (``state/blobs/<digest>``), each written once, synced, before a file refers to it."""

    def __init__(self, folder: Path, sync: bool = True) -> None:
        self.folder, self.sync = folder, sync
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.written: set[str] = {p.name for p in folder.iterdir() if len(p.name) == 64}
        self.read_digests: set[str] = set()  # the bodies a load read: every other one belongs to nothing

    @staticmethod
    def digest(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()

    def put(self, body: bytes, digest: str | None = None) -> str:
        """Keep ``body`` (once); its digest names it."""
        digest = digest or self.digest(body)
        if digest not in self.written:
            with self._lock:
                if digest not in self.written:
                    write_atomic(self.folder / digest, body, sync=self.sync)
                    self.written.add(digest)
        return digest

    def read(self, digest: str) -> bytes:
        self.read_digests.add(digest)
        try:
            return (self.folder / digest).read_bytes()
        except OSError as exc:
            raise StateError(f"{self.folder / digest} is missing: a saved object's body ({exc.strerror})") from exc

    def collect(self, used: set[str]) -> int:
        """Remove the bodies no record names any more; returns how many."""
        with self._lock:
            gone = self.written - used
            for name in gone:
                (self.folder / name).unlink(missing_ok=True)
            self.written -= gone
        return len(gone)


class Journal:
    """An append-only file of JSON lines (one ``write`` each, no sync of its own: the next synced save or the kernel
    carries it), compacted to its newest ``keep`` lines once it holds twice that. A line cut by a power cut is
    skipped when read."""

    def __init__(self, path: Path, keep: int) -> None:
        self.path, self.keep = path, keep
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._lines = sum(1 for _ in open(path, "rb"))

    def read(self) -> list[dict[str, Any]]:
        rows = []
        with open(self.path, "rb") as lines:
            for line in lines:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue  # the tail of a write a power cut interrupted
        return rows[-self.keep:]

    def append(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, default=str, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            os.write(self._fd, line)
            self._lines += 1
            if self._lines > 2 * self.keep:
                self._compact()

    def _compact(self) -> None:
        lines = self.path.read_bytes().splitlines(keepends=True)[-self.keep:]
        write_atomic(self.path, b"".join(lines), sync=False)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._lines = len(lines)

    def clear(self) -> None:
        with self._lock:
            os.ftruncate(self._fd, 0)
            self._lines = 0

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)
