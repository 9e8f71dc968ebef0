"""A published layer's zip kept in a file, not in the daemon's memory.

moto keeps the base64 text of a published layer's zip (20 MiB for the lab's pymysql layer) beside the zip itself,
and never reads it again; the zip (15 MiB) is read when a worker starts. The text is dropped, the zip kept in a
file under the lab's home (:func:`keep_layers_in`), as Lambda keeps it in storage rather than in the memory of its
API.
"""
from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Any

from labkit.localcloud.core.patches import Patch

_layer_store: list[Path] = []  # the folder of layers' zips, once keep_layers_in() named it


def keep_layers_in(folder: Path) -> None:
    """Keep published layers' zips as files in ``folder`` (emptied: moto's records live in memory only, so the
    zips an earlier daemon left there belong to nothing)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _layer_store[:] = [folder]


def _layer_code(version: Any) -> bytes:
    path: Path | None = vars(version).get("_labkit_code_path")
    code: bytes = path.read_bytes() if path is not None else vars(version).get("_labkit_code", b"")
    return code


def _store_layer_code(version: Any, code: bytes) -> None:
    if not _layer_store or not code:
        version._labkit_code = code
        return
    path = _layer_store[0] / f"{hashlib.sha256(code).hexdigest()}.zip"
    if not path.exists():
        staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        staging.write_bytes(code)
        staging.replace(path)
    version._labkit_code_path = path


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
