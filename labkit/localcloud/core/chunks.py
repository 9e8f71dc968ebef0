"""A long, append-only list of records saved as sealed chunks, so that a save costs what was added, not the history.

CloudWatch Logs keeps every event of a log stream, CloudWatch every data point: the telemetry of a lab under load
adds some each second, and each PutLogEvents or PutMetricData is a mutating request, saved before its answer
(:mod:`.state`). Saved as part of its backend's file, the whole history was pickled and written again each second:
a lab that had taken 10,000 orders rewrote 8 MB a second, and the daemon's CPU per order grew with every order.

:func:`chunked` cuts such a list into chunks of :data:`CHUNK_ITEMS` items: each full chunk is pickled once, kept
as a blob named by its SHA-256 (:class:`~.statefiles.BlobStore`, written before the file that names it), and
remembered on the list's owner with the identity of its first and last item; the backend's file holds the chunks'
digests and the short tail that is not yet a chunk. The next save pickles only the tail and the chunks filled since;
a list unchanged since the last save (most log streams: one per Lambda worker ever started) is saved as then
(:class:`Saved`), and one unchanged for :data:`QUIET_SECONDS` has its tail kept as a blob too, so that a save
writes what the busy streams added, not every stream's tail again. At load (:func:`_joined`) the chunks are read
back in order. (A tail kept as a blob and then added to again is a blob nothing names: collected at the next start.)

A service may say how its records pack (:class:`Columns`): a chunk or tail of records of one class with plain
attributes is then pickled as one list per attribute, which the C pickler writes without calling back into Python
for each record (a log event costs a third of what it did, and leaves no temporary objects behind for the
garbage collector); unpickled, it is the same records again. A list with any other record is pickled as it is.
"""
from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labkit.localcloud.core.pickling import StatePickler, StateRule, loading_blobs

CHUNK_ITEMS = 256
CACHE = "_labkit_chunks"  # on the owner: {attribute: (generation, [(digest, first, last item), ...])} of its chunks
SAVED = "_labkit_chunk_saved"  # on the owner: {attribute: Saved}, what its last save saved
QUIET_SECONDS = 60.0  # a list unchanged this long has its tail kept as a blob too (a log stream whose worker is gone)
_generation = [0]  # what the owners remember holds only while this is unchanged (:func:`forget`)


def forget() -> None:
    """The records were changed in place (:meth:`~.state.Persistence.rewrite`: a lab's addresses moved): what was
    remembered of every chunk and tail no longer holds, each is pickled again at its next save."""
    _generation[0] += 1


@dataclass(frozen=True)
class Sealed:
    digest: str
    first: Any
    last: Any


Codec = tuple[Callable[[list[Any]], Any], Callable[[Any], list[Any]]]  # a column's (encode, decode); encode: None
# when a value is not of the shape it packs


@dataclass(frozen=True)
class Columns:
    """Records of exactly ``kind`` whose attributes are exactly ``fields``, saved as one list per attribute;
    ``codecs`` pack a column of another kind of value (each function module-level: it is pickled by name)."""

    kind: type
    fields: tuple[str, ...]
    codecs: dict[str, Codec] = field(default_factory=dict)

    def pack(self, items: list[Any]) -> Packed | None:
        """``items`` as columns, or None when one of them is not a plain record of this kind."""
        kind, names = self.kind, set(self.fields)
        states = [vars(item) for item in items if type(item) is kind]
        if len(states) != len(items) or any(state.keys() != names for state in states):
            return None
        columns, decoders = [], []
        for name in self.fields:
            column = [state[name] for state in states]
            codec = self.codecs.get(name)
            if codec is not None:
                column = codec[0](column)
                if column is None:
                    return None
            columns.append(column)
            decoders.append(codec[1] if codec is not None else None)
        return Packed(_unpacked, (kind, self.fields, columns, decoders))


class Packed:
    """A chunk or tail of records as columns: unpickled, it is the list of records again."""

    def __init__(self, unpack: Callable[..., list[Any]], args: tuple[Any, ...]) -> None:
        self.unpack, self.args = unpack, args

    def __reduce__(self) -> Any:
        return self.unpack, self.args


def _unpacked(kind: Any, fields: tuple[str, ...], columns: list[Any],
              decoders: list[Callable[[Any], list[Any]] | None]) -> list[Any]:
    """The records again (made as pickle makes an object, ``kind.__new__``, their attributes in the same order)."""
    values = [column if decode is None else decode(column) for column, decode in zip(columns, decoders)]
    records = []
    for row in zip(*values):
        record = kind.__new__(kind)
        vars(record).update(zip(fields, row))
        records.append(record)
    return records


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


def chunked(owner: Any, attribute: str, items: list[Any], pickler: StatePickler, columns: Columns | None = None) -> Any:
    """What to save for ``owner.<attribute>`` (the list ``items``): a :class:`Chunked` whose full chunks are blobs,
    pickled only when new; the list itself (or its columns) when there is no blob store (an audit) or it is
    shorter than a chunk. A list unchanged since the last save is saved as it was then, its tail too; one unchanged
    for :data:`QUIET_SECONDS` (a log stream whose worker is gone) gets its tail kept as a blob as well, so that
    the backend's file names it instead of holding it again at every save."""
    if pickler.blobs is None or not items:
        return items
    memo: dict[str, Saved] = vars(owner).setdefault(SAVED, {})
    saved = memo.get(attribute)
    if saved is not None and saved.holds(items, pickler.blobs.written):
        if saved.tail_digest is None and saved.tail and time.monotonic() - saved.since >= QUIET_SECONDS:
            saved.tail_digest = _blob(saved.tail, pickler)
        return saved.result()

    def packed(part: list[Any]) -> Any:
        found = columns.pack(part) if columns is not None and part else None
        return part if found is None else found

    caches: dict[str, tuple[int, list[Sealed]]] = vars(owner).setdefault(CACHE, {})
    generation, known = caches.get(attribute, (-1, []))
    if generation != _generation[0]:
        known = []
    sealed: list[Sealed] = []
    for index in range(len(items) // CHUNK_ITEMS):
        start = index * CHUNK_ITEMS
        first, last = items[start], items[start + CHUNK_ITEMS - 1]
        old = known[index] if index < len(known) else None
        if old is not None and old.first is first and old.last is last and old.digest in pickler.blobs.written:
            sealed.append(old)
            continue
        sealed.append(Sealed(_blob(packed(items[start:start + CHUNK_ITEMS]), pickler), first, last))
    caches[attribute] = (_generation[0], sealed)
    tail = items[len(sealed) * CHUNK_ITEMS:]
    memo[attribute] = saved = Saved(_generation[0], len(items), items[0], items[-1], [s.digest for s in sealed],
                                    packed(tail) if tail else [], time.monotonic())
    return saved.result()


def _blob(part: Any, pickler: StatePickler) -> str:
    """A part of the list pickled (a part of its backend's file: other backends referred to, not copied) and kept
    as a blob; its digest."""
    buffer = io.BytesIO()
    part_pickler = StatePickler(buffer, pickler.root, pickler.rules, pickler.blobs)
    part_pickler.dump(part)
    pickler.refs |= part_pickler.refs
    assert pickler.blobs is not None
    return pickler.blobs.put(buffer.getvalue())


@dataclass
class Saved:
    """What the last save of a list saved, and what it was then (its length, first and last item)."""

    generation: int
    length: int
    first: Any
    last: Any
    digests: list[str]
    tail: Any  # the items after the full chunks (as columns when they pack)
    since: float  # (monotonic) when the list was first saved as it is
    tail_digest: str | None = None  # the tail kept as a blob once the list stayed unchanged

    def holds(self, items: list[Any], written: set[str]) -> bool:
        """``items`` is the list as it was saved (append-only: the same length, first and last item), and the
        blobs the save named are there."""
        return (self.generation == _generation[0] and self.length == len(items) and self.first is items[0]
                and self.last is items[-1] and all(d in written for d in self.digests)
                and (self.tail_digest is None or self.tail_digest in written))

    def result(self) -> Any:
        if self.tail_digest is not None:
            return Chunked([*self.digests, self.tail_digest], [])
        return Chunked(self.digests, self.tail) if self.digests else self.tail


def without_cache(state: dict[str, Any]) -> dict[str, Any]:
    """An owner's attributes as saved: without the chunks and tail it remembers (they name live objects)."""
    return {k: v for k, v in state.items() if k not in (CACHE, SAVED)}


class Long:
    """A list a rule's ``trim`` hands the pickler to save chunked (a trim has no pickler; this type's reducer has)."""

    def __init__(self, owner: Any, attribute: str, items: list[Any], columns: Columns | None = None) -> None:
        self.owner, self.attribute, self.items, self.columns = owner, attribute, items, columns


def _reduce_long(long: Long, pickler: StatePickler) -> Any:
    saved = chunked(long.owner, long.attribute, long.items, pickler, long.columns)
    if isinstance(saved, Chunked):
        return _joined, (saved.digests, saved.tail)
    return saved.__reduce__() if isinstance(saved, Packed) else (list, (saved,))


def rules() -> list[StateRule]:
    return [StateRule(Long, "a long append-only list of a backend (log events, metric data): its full chunks are "
                      "blobs, pickled once (the backend's file names them)", reduce=_reduce_long)]
