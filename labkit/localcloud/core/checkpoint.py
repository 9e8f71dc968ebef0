"""The daemon's side of a checkpoint: a consistent copy of the whole lab, and what moves a lab to another place.

A checkpoint (``labkit cloud snapshot NAME``; packed and unpacked by :mod:`labkit.localcloud.checkpoints`) is a
folder of:

``MANIFEST.json``   checkpoint and state formats, moto version, when and where it was made (home, project
                    folder), and what each service said of its files (``services``)
``state/``          the state folder as of one instant (moto's records, the services' states, the bodies, the
                    event history)
``files/<name>/``   what a service adds (its ``export_state(folder)``): each running database as SQL, each
                    instance's disk, the layers' zips

:func:`make` holds every service's state lock (mutating requests wait; reads go on) while it saves everything and
hard-links the state files into the checkpoint (each is replaced by rename, never written in place, so a link is a
frozen copy; a journal, appended in place, is copied), then lets the services add their files without the locks
(a database dump is consistent by itself; a disk is copied as an EBS snapshot of a running instance is taken).

Restored (into this lab or another), the state goes back in place and each service's files to
``state/import/<service>/``; at its next start the daemon takes them in: a lab restored elsewhere gets its own
addresses (:func:`rewrite_records` moves every address of the old block to the same place in the new one) and
paths (:func:`rewrite_paths` rewrites an instance disk's text files, as conda relocates an environment).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from labkit.localcloud.control import PROJECT_ROOT

CHECKPOINT_FORMAT = 1
MANIFEST = "MANIFEST.json"


def make(persistence: Any, services: Iterable[Any], staging: Path) -> dict[str, Any]:
    """Fill ``staging`` with a checkpoint of the running lab; returns its manifest."""
    staging.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with persistence.frozen():
        journals = frozenset(persistence.journals())
        link_tree(persistence.root, staging / "state", skip=frozenset({"import"}), copy=journals)
    frozen = time.perf_counter()
    exported: dict[str, Any] = {}
    for service in services:
        folder = staging / "files" / service.name
        folder.mkdir(parents=True, exist_ok=True)
        said = service.export_state(folder)
        if said is not None:
            exported[service.name] = said
        if not any(folder.iterdir()):
            folder.rmdir()
    manifest = {"format": CHECKPOINT_FORMAT, **persistence.version(), "made_at": time.time(),
                "home": str(persistence.home), "project": str(PROJECT_ROOT), "python": sys.version.split()[0],
                "services": exported,
                "seconds": {"frozen": round(frozen - started, 3), "files": round(time.perf_counter() - frozen, 3)}}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def link_tree(source: Path, target: Path, skip: frozenset[str] = frozenset(),
              copy: frozenset[Path] = frozenset()) -> None:
    """``target`` as a copy of ``source`` made of hard links (``copy``: files copied instead); temporary files of a
    write under way (``.name.*``) are left out."""
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        if here == source:
            dirs[:] = [d for d in dirs if d not in skip]
        out = target / here.relative_to(source)
        out.mkdir(parents=True, exist_ok=True)
        for name in files:
            if name.startswith("."):
                continue
            if here / name in copy:
                shutil.copy2(here / name, out / name)
            else:
                os.link(here / name, out / name)


def text_pattern(old: str) -> re.Pattern[str]:
    """``old`` where it starts a token (an address prefix ``127.17.54.`` in ``127.17.54.7``, not in ``1127.17.54.7``)."""
    return re.compile(r"(?<![\w.])" + re.escape(old))


def rewrite_records(roots: list[Any], pattern: re.Pattern[str], new: str) -> int:
    """Replace ``pattern`` by ``new`` in every string (and bytes) held by ``roots`` -- moto's backends: their
    dictionaries, lists, sets and moto objects' attributes, in place. Returns how many strings changed."""
    changed = 0
    seen: set[int] = set()
    byte_pattern = re.compile(pattern.pattern.encode())

    def fix(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, str):
            text, count = pattern.subn(lambda _m: new, value)
            changed += bool(count)
            return text
        if isinstance(value, bytes):
            data, count = byte_pattern.subn(lambda _m: new.encode(), value)
            changed += bool(count)
            return data
        walk(value)
        return value

    def walk(obj: Any) -> None:
        if id(obj) in seen or isinstance(obj, (int, float, bool, type(None), type, tuple)):
            return  # tuples are immutable and hold no address in moto's records
        seen.add(id(obj))
        if isinstance(obj, dict):
            for key in list(dict.keys(obj)):
                value, new_key = fix(dict.__getitem__(obj, key)), fix(key) if isinstance(key, str) else key
                if new_key != key:
                    dict.__delitem__(obj, key)
                dict.__setitem__(obj, new_key, value)
        elif isinstance(obj, list):
            obj[:] = [fix(v) for v in obj]
        elif isinstance(obj, set):
            items = [fix(v) for v in obj]
            obj.clear()
            obj.update(items)
        if hasattr(obj, "__dict__") and type(obj).__module__.startswith(("moto", "labkit")):
            attributes = vars(obj)
            for key, value in list(attributes.items()):
                attributes[key] = fix(value)

    for root in roots:
        walk(root)
    return changed


BINARY_SUFFIXES = (".pyc", ".so", ".whl", ".gz", ".zip", ".png", ".jpg")


def rewrite_paths(root: Path, paths: dict[str, str]) -> int:
    """Rewrite the old lab's absolute paths in the text files and symlinks under ``root`` (unit files, a venv's
    scripts and ``pyvenv.cfg``, an app's configuration); returns how many changed."""
    paths = {old: new for old, new in paths.items() if old and old != new}
    if not paths:
        return 0
    pattern = re.compile("|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True)).encode())

    def swap(match: re.Match[bytes]) -> bytes:
        return paths[match.group().decode()].encode()

    count = 0
    for folder, dirs, files in os.walk(root):
        for name in [*files, *dirs]:
            path = Path(folder) / name
            if name in dirs and not path.is_symlink():
                continue
            if path.is_symlink():
                target = os.readlink(path).encode()
                moved = pattern.sub(swap, target)
                if moved != target:
                    path.unlink()
                    os.symlink(moved.decode(), path)
                    count += 1
                continue
            if name.endswith(BINARY_SUFFIXES):
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if b"\0" in data[:1024]:
                continue
            moved = pattern.sub(swap, data)
            if moved != data:
                mode = path.stat().st_mode
                path.write_bytes(moved)
                os.chmod(path, mode)
                count += 1
    return count
