"""moto's backends as files of the lab's state: save one, save what a request touched, load them all back.

Each backend is pickled by :mod:`.pickling` and written whole by :mod:`.statefiles` (one file per service and
region, one per partition for a global service); loading reads every file (its header checked), unpickles the
backends in an order where one another refers to comes first, and puts each into moto's module-level
``BackendDict``, which keeps its identity (moto's code holds that object). :class:`.state.Persistence` decides
when.
"""
from __future__ import annotations

import collections
import functools
import pickle
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from moto.core.base_backend import BaseBackend

from labkit.localcloud.core import pickling
from labkit.localcloud.core.pickling import BackendKey, Rules, backend_dict, in_use, loading
from labkit.localcloud.core.statefiles import BlobStore, StateError, decode, encode, write_atomic

SIGNING_NAMES = {"monitoring": "cloudwatch"}  # a signing name that is not moto's service name


@functools.cache
def moto_version() -> str:
    """The installed moto's version (read once: it names every file a save writes, and reading the package's
    metadata cost half a millisecond)."""
    import importlib.metadata

    return importlib.metadata.version("moto")


class StateStore:
    """moto's backends as files: save one, save what a request touched, load them all."""

    def __init__(self, root: Path, rules: Rules, sync: bool) -> None:
        self.root, self.rules, self.sync = root, rules, sync
        self.blobs = BlobStore(root / "blobs", sync=sync)
        self.locks: dict[str, threading.RLock] = collections.defaultdict(threading.RLock)
        self.figures = {"saves": 0, "bytes": 0, "pickle_ms": 0.0, "write_ms": 0.0}
        self._marked: set[tuple[str, str | None]] = set()
        self._marked_lock = threading.Lock()

    def path(self, key: BackendKey) -> Path:
        service, account, region = key
        return self.root / "moto" / service / account / f"{region}.pkl"

    def save(self, key: BackendKey, backend: BaseBackend) -> int:
        with self.locks[key[0]]:
            started = time.perf_counter()
            payload, refs = pickling.dump(backend, self.rules, self.blobs)
            pickled = time.perf_counter()
            header = {"service": key[0], "account": key[1], "region": key[2], "moto": moto_version(),
                      "class": f"{type(backend).__module__}.{type(backend).__qualname__}", "refs": sorted(refs)}
            write_atomic(self.path(key), encode(header, payload), sync=self.sync)
            done = time.perf_counter()
        figures = self.figures
        figures["saves"] += 1
        figures["bytes"] += len(payload)
        figures["pickle_ms"] += (pickled - started) * 1000
        figures["write_ms"] += (done - pickled) * 1000
        return len(payload)

    def save_service(self, service: str, region: str | None) -> int:
        """Every backend of moto's ``service`` in ``region`` (a global service: its partitions; None: all)."""
        bd = backend_dict(service)
        written = 0
        for account, per_account in list(dict.items(bd)):
            for name, backend in list(dict.items(per_account)):
                if region is None or name == region or not bd._use_boto3_regions:
                    written += self.save((service, account, name), backend)
        return written

    def save_request(self, signing_name: str | None, region: str | None) -> int:
        service = self.service_for(signing_name)
        return self.save_service(service, region) if service else 0

    @staticmethod
    def service_for(signing_name: str | None) -> str | None:
        """moto's service for a request's signing name, if moto keeps records of it."""
        if not signing_name:
            return None
        service = SIGNING_NAMES.get(signing_name, signing_name)
        try:
            backend_dict(service)
        except (ImportError, AttributeError, KeyError, ValueError):
            return None
        return service

    def mark(self, service: str, region: str | None) -> None:
        with self._marked_lock:
            self._marked.add((service, region))

    def flush(self) -> None:
        with self._marked_lock:
            marked, self._marked = self._marked, set()
        for service, region in marked:
            self.save_service(service, region)

    def save_all(self) -> int:
        return sum(self.save(key, backend) for key, backend in iter_backends())

    def files(self) -> list[Path]:
        folder = self.root / "moto"
        return sorted(folder.glob("*/*/*.pkl")) if folder.is_dir() else []

    def load_all(self) -> dict[BackendKey, BaseBackend]:
        """Read every backend file and put each backend into moto's ``BackendDict`` (a backend another one refers
        to is read first). Raises StateError naming a file that cannot be read."""
        paths: dict[BackendKey, Path] = {}
        payloads: dict[BackendKey, bytes] = {}
        for path in self.files():
            meta, payload = decode(path)
            if meta.get("moto") != moto_version():
                raise StateError(f"{path} was written with moto {meta.get('moto')}; this labkit runs moto "
                                 f"{moto_version()} and cannot read it")
            key = (meta["service"], meta["account"], meta["region"])
            paths[key], payloads[key] = path, payload
        loaded: dict[BackendKey, BaseBackend] = {}
        under_way: set[BackendKey] = set()

        def resolve(key: BackendKey) -> BaseBackend:
            key = (key[0], key[1], key[2])
            if key in loaded:
                return loaded[key]
            if key not in payloads:  # never saved: never changed, the live (new) one
                live: BaseBackend = backend_dict(key[0])[key[1]][key[2]]
                return live
            if key in under_way:
                raise StateError(f"{paths[key]}: backends refer to each other in a circle; cannot load")
            under_way.add(key)
            try:
                with loading(resolve, self.blobs):
                    backend: BaseBackend = pickle.loads(payloads[key])
            except StateError:
                raise
            except Exception as exc:
                raise StateError(f"{paths[key]} cannot be read by this labkit ({type(exc).__name__}: {exc})") \
                    from exc
            install(key, backend)
            self.rules.after_load(backend)
            loaded[key] = backend
            return backend

        for key in payloads:
            resolve(key)
        return loaded


def iter_backends() -> Iterator[tuple[BackendKey, BaseBackend]]:
    """Every backend moto has made, with its key."""
    for bd in in_use():
        for account, per_account in list(dict.items(bd)):
            for region, backend in list(dict.items(per_account)):
                yield (bd.service_name, account, region), backend


def install(key: BackendKey, backend: BaseBackend) -> None:
    """Put a loaded backend where moto looks for it: the module-level ``BackendDict`` keeps its identity (moto code
    holds it), its contents are the loaded ones."""
    service, account, region = key
    per_account = backend_dict(service)[account]  # made (and the BackendDict noted as in use) if need be
    dict.__setitem__(per_account, region, backend)
