"""What the lab's state needs to know of moto's S3 (issue 23; composed by :mod:`labkit.localcloud.server`).

moto keeps an object's body in a ``SpooledTemporaryFile`` (its ``FakeKey.__getstate__`` copies the body into the
pickle): saved as it is, every PutObject would rewrite every object of the account. The body is kept once as a
file named by its SHA-256 (:class:`~labkit.localcloud.core.statefiles.BlobStore`), written before the record that
names it; the record holds the digest, cached on the key until a new body is written (:mod:`.patches`).
"""
from __future__ import annotations

from typing import Any

from labkit.localcloud.core.pickling import StatePickler, StateRule, loading_blobs

BLOB = "_labkit_blob"  # the digest of a key's body as last saved (dropped when the body changes)


def _fake_key(kind: Any, state: dict[str, Any], digest: str) -> Any:
    key = kind.__new__(kind)
    key.__setstate__({**state, "value": loading_blobs().read(digest) if digest else b""})  # moto's: new buffer, lock
    if digest:
        vars(key)[BLOB] = digest
    return key


def _reduce_key(key: Any, pickler: StatePickler) -> Any:
    if pickler.blobs is None:  # an audit: pickle's own way
        return NotImplemented
    attributes = vars(key)
    digest = attributes.get(BLOB)
    if digest is None or digest not in pickler.blobs.written:
        try:
            body = key.value
        except ValueError:  # a deleted key's closed buffer (moto's __getstate__ says the same)
            body = b""
        digest = pickler.blobs.put(body) if body else ""
        attributes[BLOB] = digest
    state = {k: v for k, v in attributes.items() if k not in ("_value_buffer", "lock", BLOB)}
    return _fake_key, (type(key), state, digest)


def rules() -> list[StateRule]:
    from moto.s3.models import FakeKey

    return [StateRule(FakeKey, "an object's body is a file named by its SHA-256, not a part of the S3 backend's "
                      "file (which every PutObject rewrites)", reduce=_reduce_key)]
