"""A long, append-only list of records saved as sealed chunks, so that a save costs what was added, not the history.

CloudWatch Logs keeps every event of a log stream, CloudWatch every data point: the telemetry of a lab under load
adds some each second, and each PutLogEvents or PutMetricData is a mutating request, saved before its answer
(:mod:`.state`). Saved as part of its backend's file, the whole history was pickled and written again each second:
a lab that had taken 10,000 orders rewrote 8 MB a second, and the daemon's CPU per order grew with every order.

:func:`chunked` cuts such a list into chunks of :data:`CHUNK_ITEMS` items: each full chunk is pickled once, kept
as a blob named by its SHA-256 (:class:`~.statefiles.BlobStore`, written before the file that names it), and
remembered on the list's owner with the identity of its first and last item; the backend's file holds the chunks'
digests and the short tail that is not yet a chunk. The next save pickles only the tail and the chunks filled since.
At load (:func:`_joined`) the chunks are read back in order.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from labkit.localcloud.core.pickling import StatePickler, StateRule, loading_blobs

CHUNK_ITEMS = 256
CACHE = "_labkit_chunks"  # on the owner: {attribute: [(digest, first item, last item), ...]} of its sealed chunks


@dataclass(frozen=True)
class Sealed:
    digest: str
    first: Any
    last: Any


class Chunked:
    """What a backend's file holds in place of a long list: the digests of its sealed chunks and its tail."""

    def __init__(self, digests: list[str], tail: list[Any]) -> None:
        self.digests, self.tail = digests, tail

    def __reduce__(self) -> Any:
        return _joined, (self.digests, self.tail)


def _joined(digests: list[str], tail: list[Any]) -> list[Any]:
    """The list again, at load: its chunks in order, then its tail."""
    import pickle

    blobs = loading_blobs()
    items: list[Any] = []
    for digest in digests:
        items.extend(pickle.loads(blobs.read(digest)))
    items.extend(tail)
    return items


def chunked(owner: Any, attribute: str, items: list[Any], pickler: StatePickler) -> Any:
    """What to save for ``owner.<attribute>`` (the list ``items``): a :class:`Chunked` whose full chunks are blobs,
    pickled only when new; the list itself when there is no blob store (an audit) or it is shorter than a chunk."""
    if pickler.blobs is None or len(items) < CHUNK_ITEMS:
        return items
    caches: dict[str, list[Sealed]] = vars(owner).setdefault(CACHE, {})
    known = caches.get(attribute, [])
    sealed: list[Sealed] = []
    for index in range(len(items) // CHUNK_ITEMS):
        start = index * CHUNK_ITEMS
        first, last = items[start], items[start + CHUNK_ITEMS - 1]
        old = known[index] if index < len(known) else None
        if old is not None and old.first is first and old.last is last and old.digest in pickler.blobs.written:
            sealed.append(old)
            continue
        buffer = io.BytesIO()
        chunk_pickler = StatePickler(buffer, pickler.root, pickler.rules, pickler.blobs)  # (a part of its file)
        chunk_pickler.dump(items[start:start + CHUNK_ITEMS])
        pickler.refs |= chunk_pickler.refs
        sealed.append(Sealed(pickler.blobs.put(buffer.getvalue()), first, last))
    caches[attribute] = sealed
    return Chunked([s.digest for s in sealed], items[len(sealed) * CHUNK_ITEMS:])


def without_cache(state: dict[str, Any]) -> dict[str, Any]:
    """An owner's attributes as saved: without the chunks it remembers (they name live objects)."""
    return {k: v for k, v in state.items() if k != CACHE}


class Long:
    """A list a rule's ``trim`` hands the pickler to save chunked (a trim has no pickler; this type's reducer has)."""

    def __init__(self, owner: Any, attribute: str, items: list[Any]) -> None:
        self.owner, self.attribute, self.items = owner, attribute, items


def _reduce_long(long: Long, pickler: StatePickler) -> Any:
    saved = chunked(long.owner, long.attribute, long.items, pickler)
    return (_joined, (saved.digests, saved.tail)) if isinstance(saved, Chunked) else (list, (saved,))


def rules() -> list[StateRule]:
    return [StateRule(Long, "a long append-only list of a backend (log events, metric data): its full chunks are "
                      "blobs, pickled once (the backend's file names them)", reduce=_reduce_long)]
