"""A published layer's zip kept in a file, not in the daemon's memory.

moto keeps the base64 text of a published layer's zip (20 MiB for the lab's pymysql layer) beside the zip itself,
and never reads it again; the zip (15 MiB) is read when a worker starts. The text is dropped, the zip kept in a
file under the lab's home (:func:`keep_layers_in`), as Lambda keeps it in storage rather than in the memory of its
API. The file is named by the zip's SHA-256 and the record names it by that digest, not by a path: the folder is
kept across restarts (the lab's saved layer versions name their zips) and moves with a checkpoint; written and
synced before PublishLayerVersion answers (issue 23).
"""
from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

from labkit.localcloud.core.patches import Patch

_layer_store: list[Path] = []  # the folder of layers' zips, once keep_layers_in() named it


DIGEST = "_labkit_code_digest"


def keep_layers_in(folder: Path) -> None:
    """Keep published layers' zips as files in ``folder`` (kept across restarts: see :func:`collect`)."""
    folder.mkdir(parents=True, exist_ok=True)
    _layer_store[:] = [folder]


def layers_folder() -> Path | None:
    return _layer_store[0] if _layer_store else None


def _layer_code(version: Any) -> bytes:
    digest = vars(version).get(DIGEST)
    if digest is not None and _layer_store:
        return (_layer_store[0] / f"{digest}.zip").read_bytes()
    code: bytes = vars(version).get("_labkit_code", b"")
    return code


def _store_layer_code(version: Any, code: bytes) -> None:
    if not _layer_store or not code:
        version._labkit_code = code
        return
    digest = hashlib.sha256(code).hexdigest()
    path = _layer_store[0] / f"{digest}.zip"
    if not path.exists():
        staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        with open(staging, "wb") as out:  # on the disk before PublishLayerVersion answers
            out.write(code)
            out.flush()
            os.fsync(out.fileno())
        staging.replace(path)
    vars(version)[DIGEST] = digest


def collect(used: set[str]) -> int:
    """Remove the zips (and half-written files) no layer version names; returns how many."""
    folder = layers_folder()
    gone = 0
    for path in folder.iterdir() if folder is not None else []:
        if path.name.startswith(".") or path.name.removesuffix(".zip") not in used:
            path.unlink(missing_ok=True)
            gone += 1
    return gone


def patches() -> list[Patch]:
    """The layer patches."""
    from moto.awslambda import models as awslambda

    def forgets_upload(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self.content = {k: v for k, v in self.content.items() if k != "ZipFile"}
        return wrapper

    return [
        Patch(awslambda.LayerVersion, "__init__", "moto keeps the base64 text of the layer's zip (20 MiB for the "
              "lab's) beside the zip it decoded and never reads it again", forgets_upload),
        Patch(awslambda.LayerVersion, "code_bytes", "a layer's zip (15 MiB for the lab's) is kept in a file, read "
              "when a worker starts", lambda _missing: property(_layer_code, _store_layer_code), adds=True),
    ]
