"""How one moto backend is pickled: its own records, and nothing of any other backend.

:class:`StatePickler` is the standard C pickler (protocol 5) with a ``reducer_override`` that

* cuts every reference to *another* backend into a reference resolved at load (:func:`backend_ref`,
  :func:`load_backend`): an RDS subnet group holds EC2 subnets, a Lambda function the Logs backend; pickled by
  value, each file would carry a copy of the other service, and a restored RDS would point at a second EC2;
* refuses moto's ``BackendDict`` itself (it would pull in all of moto);
* saves the backend being pickled without running its ``__init__`` again at load (which would make its catalogues
  again and register it twice), trimmed by the service's own rule (IAM's unused AWS managed policies);
* applies the :class:`StateRule` reducers, each registered by the service package that owns the type (as moto
  patches are: ``<service>/state.py`` returns its rules, :mod:`labkit.localcloud.server` composes the lists).

The generic rules are here: a lock is saved as a new lock, a weak-value dictionary as its items, a ``defaultdict``
whose factory is one of moto's lambdas by a module-level factory of the same behaviour (each such lambda named by a
service's rule; an unknown one fails the save with its name, so a moto upgrade fails the tests, not a student's
lab).
"""
from __future__ import annotations

import collections
import contextlib
import contextvars
import copyreg
import io
import pickle
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from moto.core.base_backend import AccountSpecificBackend, BackendDict, BaseBackend

from labkit.localcloud.core.statefiles import BlobStore

BackendKey = tuple[str, str, str]  # (moto's service name of the backend, account, region)


@dataclass(frozen=True)
class StateRule:
    """What the state needs to know of one type moto (or a labkit patch) puts in the records, and why.

    ``kind`` is a class, or -- with ``factory`` -- the qualified name of a lambda moto uses as a ``defaultdict``
    factory. ``reduce(obj, pickler)`` returns a reduce tuple for an object of exactly that class (or
    ``NotImplemented``: pickle's own way); ``trim(backend, attributes)`` returns what of a backend of that class
    is saved; ``after_load(backend)`` does what the class's ``__init__`` does besides setting attributes."""

    kind: Any
    why: str
    reduce: Callable[[Any, StatePickler], Any] | None = None
    factory: Callable[[], Any] | None = None
    trim: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    after_load: Callable[[Any], None] | None = None

    @property
    def label(self) -> str:
        return self.kind if isinstance(self.kind, str) else f"{self.kind.__module__}.{self.kind.__qualname__}"


RuleList = Callable[[], list[StateRule]]


def _lock() -> Any:
    return threading.Lock()


def _rlock() -> Any:
    return threading.RLock()


def _weak_values(items: dict[str, Any]) -> weakref.WeakValueDictionary[str, Any]:
    return weakref.WeakValueDictionary(items)


def _defaultdict(factory: Any, items: dict[str, Any]) -> collections.defaultdict[Any, Any]:
    made: collections.defaultdict[Any, Any] = collections.defaultdict(factory)
    made.update(items)
    return made


def generic_rules() -> list[StateRule]:
    """What the core saves differently, whichever service holds it."""
    return [
        StateRule(type(threading.Lock()), "a lock does not pickle: saved as a new, free lock",
                  reduce=lambda _obj, _p: (_lock, ())),
        StateRule(type(threading.RLock()), "a lock does not pickle: saved as a new, free lock",
                  reduce=lambda _obj, _p: (_rlock, ())),
        StateRule(weakref.WeakValueDictionary, "its weak references do not pickle: saved as its items (kept alive "
                  "by the records that own them, in the same file)",
                  reduce=lambda obj, _p: (_weak_values, (dict(obj.items()),))),
        StateRule(collections.defaultdict, "a lambda factory does not pickle: saved with the service's named "
                  "equivalent", reduce=lambda obj, pickler: pickler.reduce_defaultdict(obj)),
    ]


class Rules:
    """The compiled rules of every service: reducers by exact type, factories by name, trims, loaders."""

    def __init__(self, lists: tuple[RuleList, ...]) -> None:
        rules = [*generic_rules(), *(rule for rule_list in lists for rule in rule_list())]
        self.rules = rules
        self.reducers = {r.kind: r.reduce for r in rules if r.reduce is not None}
        self.factories = {r.kind: r.factory for r in rules if r.factory is not None}
        self.trims = {r.kind: r.trim for r in rules if r.trim is not None}
        self.loaders = [(r.kind, r.after_load) for r in rules if r.after_load is not None]

    def after_load(self, backend: Any) -> None:
        for kind, run in self.loaders:
            if isinstance(backend, kind):
                run(backend)

    def describe(self) -> list[dict[str, str]]:
        return [{"type": rule.label, "why": rule.why} for rule in self.rules]


def backend_key(backend: BaseBackend, service: str | None = None) -> BackendKey:
    """Where ``backend`` lives in moto: its service's name, its account and region (partition, for a global one)."""
    return service or service_of(type(backend)), backend.account_id, backend.region_name


_SERVICE_OF: dict[type, str] = {}


def service_of(kind: type) -> str:
    """moto's service name (its ``BackendDict``'s) for a backend class."""
    if kind not in _SERVICE_OF:
        for bd in in_use():
            _SERVICE_OF.setdefault(bd.backend, bd.service_name)
    if kind not in _SERVICE_OF:
        raise pickle.PicklingError(f"no moto service holds backends of {kind.__module__}.{kind.__qualname__}")
    return _SERVICE_OF[kind]


def backend_dict(service: str) -> BackendDict[Any]:
    """The module-level ``BackendDict`` of moto's ``service`` (moto code holds that object: it keeps its identity)."""
    from moto.backends import get_backend

    found: BackendDict[Any] = get_backend(service)  # type: ignore[call-overload]
    return found


def in_use() -> list[BackendDict[Any]]:
    """moto's ``BackendDict`` objects that hold at least one backend."""
    instances: list[BackendDict[Any]] = BackendDict._instances  # type: ignore[misc]
    return list(instances)


_RESOLVER: contextvars.ContextVar[Callable[[BackendKey], BaseBackend] | None] = contextvars.ContextVar(
    "labkit_state_resolver", default=None)
_LOADING_BLOBS: contextvars.ContextVar[BlobStore | None] = contextvars.ContextVar("labkit_state_blobs",
                                                                                  default=None)


def load_backend(service: str, account: str, region: str) -> BaseBackend:
    """The backend a saved reference names: the one being loaded with it (the loader reads it first), or the live
    one (never saved: it never changed)."""
    resolver = _RESOLVER.get()
    if resolver is not None:
        return resolver((service, account, region))
    backend: BaseBackend = backend_dict(service)[account][region]
    return backend


def loading_blobs() -> BlobStore:
    """The bodies of the state being loaded (for a rule's reconstructor)."""
    blobs = _LOADING_BLOBS.get()
    if blobs is None:
        raise RuntimeError("no state is being loaded")
    return blobs


@contextlib.contextmanager
def loading(resolve: Callable[[BackendKey], BaseBackend], blobs: BlobStore) -> Iterator[None]:
    token, blob_token = _RESOLVER.set(resolve), _LOADING_BLOBS.set(blobs)
    try:
        yield
    finally:
        _RESOLVER.reset(token)
        _LOADING_BLOBS.reset(blob_token)


class StatePickler(pickle.Pickler):
    """One backend's records, with references to other backends cut into references (``refs``)."""

    def __init__(self, file: Any, root: BaseBackend, rules: Rules, blobs: BlobStore | None) -> None:
        super().__init__(file, protocol=5)
        self.root, self.rules, self.blobs = root, rules, blobs
        self.refs: set[BackendKey] = set()
        self.blob_digests: set[str] = set()

    def backend_ref(self, backend: BaseBackend) -> BackendKey:
        """Note that the file refers to ``backend``; its key, for a reconstructor that calls :func:`load_backend`."""
        return self.refer(backend_key(backend))

    def refer(self, key: BackendKey) -> BackendKey:
        """Note that the file refers to the backend ``key`` (loaded before this one)."""
        self.refs.add(key)
        return key

    def reduce_defaultdict(self, obj: collections.defaultdict[Any, Any]) -> Any:
        factory: Any = obj.default_factory
        if getattr(factory, "__name__", "") == "<lambda>":
            known = self.rules.factories.get(factory.__qualname__)
            if known is None:
                raise pickle.PicklingError(
                    f"a defaultdict of {factory.__module__}.{factory.__qualname__} cannot be saved: add a StateRule "
                    "with an equivalent factory to the state rules of the service package that owns it")
            factory = known
        return _defaultdict, (factory, dict(obj))

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        reduce = self.rules.reducers.get(kind)
        if reduce is not None:
            return reduce(obj, self)
        if obj is self.root:
            state = dict(vars(obj))
            trim = self.rules.trims.get(kind)
            return copyreg.__newobj__, (kind,), trim(obj, state) if trim else state  # type: ignore[attr-defined]
        if isinstance(obj, BaseBackend):
            return load_backend, self.backend_ref(obj)
        if isinstance(obj, (BackendDict, AccountSpecificBackend)):
            raise pickle.PicklingError(f"{backend_key(self.root)} holds moto's {kind.__name__} itself")
        return NotImplemented


def dump(backend: BaseBackend, rules: Rules, blobs: BlobStore | None) -> tuple[bytes, set[BackendKey]]:
    """``backend`` pickled; a dictionary changed by another thread while it was read is read again."""
    for attempt in range(5):
        buffer = io.BytesIO()
        pickler = StatePickler(buffer, backend, rules, blobs)
        try:
            pickler.dump(backend)
            return buffer.getvalue(), pickler.refs
        except RuntimeError:  # "dictionary changed size during iteration": a background thread's change
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


class AuditPickler(StatePickler):
    """A save that notes every object of another moto service pickled by value (the cross-service references a
    moto upgrade may add, which should become references): for the tests."""

    def __init__(self, file: Any, root: BaseBackend, rules: Rules) -> None:
        super().__init__(file, root, rules, None)
        self.package = type(root).__module__.split(".")[1]
        self.foreign: dict[str, int] = {}

    def reducer_override(self, obj: Any) -> Any:
        reduced = super().reducer_override(obj)
        module = type(obj).__module__
        if reduced is NotImplemented and module.startswith("moto.") \
                and module.split(".")[1] not in (self.package, "core", "utilities", "moto_api"):
            name = f"{module}.{type(obj).__qualname__}"  # copied by value, not referred to
            self.foreign[name] = self.foreign.get(name, 0) + 1
        return reduced


def audit(backend: BaseBackend, rules: Rules) -> dict[str, int]:
    """Objects of other moto services that a save of ``backend`` would copy, by class."""
    pickler = AuditPickler(io.BytesIO(), backend, rules)
    pickler.dump(backend)
    return pickler.foreign
