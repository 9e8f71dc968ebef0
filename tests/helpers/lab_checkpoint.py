"""A whole lab (steps 1-13) for the tests that need one built, not the building: restored from a checkpoint.

Building the lab takes minutes; restoring it (``control.restore_cloud``, issue 23's checkpoints) takes seconds. The
first session on a clone builds the lab through its steps, as the tests always did, and saves it as a checkpoint in
``.cache/test-checkpoints/``, named by a hash of everything that makes a lab (:func:`build_key`: labkit/,
lambda_code/, flask_app/, sql/, pyproject.toml, the installed moto and the Pythons); the next sessions restore it
into a home of their own on a free port, so a fresh CI clone builds once and a second run on the same clone starts
from the checkpoint. Another build key (a change to labkit, the app, the functions or a pin) builds and saves anew,
and the checkpoints of other keys are removed then. So does a checkpoint older than :data:`MAX_AGE`: the lab's
daily schedule (step 13) would have fallen due while it lay in the cache, and a restored lab delivers such missed
instants late (docs/localcloud.md), so its tests would meet reports nobody asked for.

The tests of building keep building: the notebooks (nbval), ``labkit up`` (tests/labkit/test_cli.py,
tests/classroom) and every step re-run on the built lab (test_lab.py's idempotence test).
``LABKIT_TESTS_BUILD_LAB=1`` makes a session build the lab (and save it again) even when a checkpoint is there.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import CheckpointError
from labkit.localcloud import checkpoints, control
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "test-checkpoints"
# What a built lab is made of: a change to any of it makes another lab, so another checkpoint.
SOURCES = ("labkit", "lambda_code", "flask_app", "sql", "pyproject.toml", "tests/helpers/lab_checkpoint.py")
SKIPPED = ("__pycache__", ".pyc", ".egg-info")
NAME, THROUGH = "test-lab", 13
BUILD_ENV = "LABKIT_TESTS_BUILD_LAB"
MAX_AGE = 12 * 3600  # seconds: half the period of the lab's schedule (rate(1 day)), which starts when it is built


@dataclass
class Origin:
    """How a session's lab came to be: ``built`` (through its steps, then saved) or ``restored``, in seconds."""

    how: str
    seconds: float
    checkpoint: Path
    save_seconds: float = 0.0

    def __str__(self) -> str:
        if self.how == "restored":
            return f"the whole lab: restored from {self.checkpoint.name} in {self.seconds:.0f} s"
        return (f"the whole lab: built through steps 1-{THROUGH} in {self.seconds:.0f} s, saved as "
                f"{self.checkpoint.name} in {self.save_seconds:.0f} s (the next session restores it)")


def build_key(root: Path = ROOT) -> str:
    """A hash of what a built lab depends on: the files of :data:`SOURCES` (paths and contents), the moto whose
    state a checkpoint pickles, this Python and the Lambda runtime's (``.venv-lambda``'s pyvenv.cfg)."""
    digest = hashlib.sha256()
    for source in SOURCES:
        path = root / source
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            relative = file.relative_to(root).as_posix()
            if not any(part in relative for part in SKIPPED):
                digest.update(relative.encode() + b"\0" + file.read_bytes() + b"\0")
    lambda_python = root / ".venv-lambda" / "pyvenv.cfg"
    digest.update(importlib.metadata.version("moto").encode() + sys.version.encode())
    digest.update(lambda_python.read_bytes() if lambda_python.is_file() else b"")
    return digest.hexdigest()[:16]


def cached(key: str) -> tuple[Path, Path]:
    """The checkpoint file of build key ``key`` and its record (the lab's name and app port)."""
    return CACHE / f"lab-{key}{checkpoints.SUFFIX}", CACHE / f"lab-{key}.json"


@contextmanager
def _cache_lock() -> Iterator[None]:
    """One session at a time builds or restores: a second one waits for the first one's checkpoint."""
    CACHE.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def whole_lab(home: Path) -> tuple[Any, Origin]:
    """The lab of steps 1-:data:`THROUGH` running in ``home`` (a fresh folder; its cloud on a free port): restored
    from the clone's checkpoint, else built through its steps and saved. The caller stops its cloud."""
    key = build_key()
    checkpoint, record = cached(key)
    with _cache_lock():
        facts = json.loads(record.read_text()) if record.is_file() and checkpoint.is_file() else {}
        if facts and not os.environ.get(BUILD_ENV) and time.time() - facts.get("saved_at", 0) < MAX_AGE:
            restored = _restore(home, checkpoint, facts)
            if restored is not None:
                return restored
        return _build_and_save(home, checkpoint, record, key)


def _restore(home: Path, checkpoint: Path, facts: dict[str, Any]) -> tuple[Any, Origin] | None:
    from labkit import Lab

    started = time.monotonic()
    try:
        status = control.restore_cloud(str(checkpoint), home, port=free_port())
    except CheckpointError as refused:  # one this labkit cannot load (the lab is left as it was): build anew
        warnings.warn(f"{checkpoint.name} was refused ({refused}): the lab is built again", stacklevel=3)
        return None
    lab = Lab(target="local", name=facts["name"], cloud_port=status.port, app_port=facts["app_port"], home=home)
    return lab, Origin("restored", time.monotonic() - started, checkpoint)


def _build_and_save(home: Path, checkpoint: Path, record: Path, key: str) -> tuple[Any, Origin]:
    from labkit import Lab
    from labkit.steps import run_steps

    started = time.monotonic()
    lab = Lab(target="local", name=NAME, cloud_port=free_port(), app_port=free_port(), home=home)
    run_steps(lab, 1, THROUGH)
    built = time.monotonic() - started
    for old in CACHE.glob("lab-*"):
        if key not in old.name:
            old.unlink(missing_ok=True)
    saved = control.snapshot_cloud(str(checkpoint), home)  # written whole or not at all
    facts = {"name": lab.name, "app_port": lab.config.app_port, "key": key, "built_seconds": round(built, 1),
             "saved_at": time.time()}
    partial = record.with_suffix(".partial")
    partial.write_text(json.dumps(facts, indent=1))
    partial.replace(record)  # the record last: a checkpoint without one is not used
    return lab, Origin("built", built, checkpoint, saved["seconds"])
