"""The lab's state on disk: what the daemon saves while it runs and loads before it serves (issue 23).

``LABKIT_HOME/state/`` holds:

``VERSION.json``                  the state format and moto version that wrote it (another one is refused)
``moto/<service>/<account>/<region>.pkl``   one of moto's backends, pickled (:mod:`.pickling`), in a checked file
                                  (:mod:`.statestore`: saving them, loading them back)
``blobs/<sha256>``                bodies too big to rewrite at every save (S3 objects)
``services/<name>.json``          each service's own state (its ``save_state()``: addresses, the lab clock ...)
``<name>/``                       a service's own files (the event history's journal)
``import/<name>/``                what a restored checkpoint brought for a service (databases as SQL, disks)
``relocate.json``                 a restored checkpoint's manifest, until the daemon has taken it in

When it is saved: a mutating API request is answered only after the backends of its service (in its region, or
its partition for a global service) have been pickled and written (:meth:`Persistence.after_request`, under the
service's lock, which the request holds while moto changes the records); a service that changed its own state
during the request (:meth:`Persistence.changed`) is written in the same step. The requests the daemon sends itself
in a :meth:`Persistence.batch` (the telemetry's PutLogEvents and PutMetricData, a few each second, whose answers
only the sender reads) are saved together when the batch ends, before the sender goes on: one save of the Logs
backend a second instead of one per log stream. Changes made outside a request -- a
database becoming ``available``, an instance ``running`` -- are marked (:meth:`Persistence.mark`) and written
within half a second by a background thread. A clean stop saves everything once more.

:class:`~labkit.localcloud.core.services.StateAccess` is what a service sees (``ctx.state``); with
``LABKIT_STATE=off`` it is that base, which keeps nothing.
"""
from __future__ import annotations

import collections
import contextlib
import hmac
import json
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from labkit.localcloud.core import chunks, pickling
from labkit.localcloud.core.checkpoint import rewrite_records, text_pattern
from labkit.localcloud.core.pickling import Rules, in_use
from labkit.localcloud.core.services import StateAccess
from labkit.localcloud.core.statefiles import FORMAT, Journal, StateError, read_json, sync_enabled, write_atomic
from labkit.localcloud.core.statestore import StateStore, iter_backends, moto_version

log = logging.getLogger("labkit.localcloud.state")
VERSION_FILE, RELOCATE_FILE = "VERSION.json", "relocate.json"
# Operations that change no record of moto's (Invoke runs code; a cold start's role session is marked by Lambda)
UNCHANGING = ("Describe", "Get", "List", "Head", "Lookup", "Search", "BatchGet", "Select", "Check", "Filter",
              "Simulate", "Invoke", "Test", "Validate", "Estimate", "Preview")
LOCK_PATIENCE = 10.0  # a mutating request waits this long for its service's lock, then goes on (and says so)
BATCH_HEADER = "X-Labkit-State-Batch"  # a request of an open batch (its value: this daemon's secret batch token)


def changes_records(operation: str | None) -> bool:
    """True for an API operation that may change moto's records (CreateVpc, PutObject; not Describe*, Invoke)."""
    return bool(operation) and not str(operation).startswith(UNCHANGING)


class Persistence(StateAccess):
    """The daemon's state: loaded before the services are made, saved while it serves and when it stops."""

    enabled = True

    def __init__(self, home: Path, rules: Rules, sync: bool | None = None) -> None:
        self.home, self.root = home, home / "state"
        self.root.mkdir(parents=True, exist_ok=True)
        self.sync = sync_enabled() if sync is None else sync
        self.store = StateStore(self.root, rules, self.sync)
        self.services_dir = self.root / "services"
        self._saved: dict[str, dict[str, Any]] = {}
        self._written: dict[str, bytes] = {}
        self._changed: set[str] = set()
        self._changed_lock = threading.Lock()
        self._journals: dict[str, Journal] = {}
        self._settling: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self.services: Iterable[Any] = ()
        self.load_seconds = 0.0
        self.last_error: str | None = None
        self.lock_waits = 0
        self._batch_token = secrets.token_urlsafe(24)  # known only in this process: no client can defer its saves
        self._batch_lock = threading.Lock()
        self._batch_save_lock = threading.Lock()
        self._open_batches = 0
        self._batched: set[tuple[str | None, str | None]] = set()  # (signing name, region) changed in a batch

    # -- what the services see ------------------------------------------------------------------------------
    def saved(self, name: str) -> dict[str, Any] | None:
        return self._saved.get(name)

    def saved_file(self, name: str) -> str:
        return str(self.services_dir / f"{name}.json")

    def changed(self, name: str) -> None:
        with self._changed_lock:
            self._changed.add(name)

    def mark(self, service: str, region: str | None = None) -> None:
        self.store.mark(service, region)

    def commit(self) -> None:
        self.store.flush()
        self.save_services(only_changed=True)

    def imported(self, name: str) -> Path | None:
        folder = self.root / "import" / name
        return folder if folder.is_dir() else None

    def journal(self, name: str, keep: int) -> Journal:
        if name not in self._journals:
            self._journals[name] = Journal(self.root / name / "journal.jsonl", keep)
        return self._journals[name]

    def rewrite(self, old: str, new: str) -> int:
        pattern = text_pattern(old)
        changed = rewrite_records([backend for _key, backend in iter_backends()], pattern, new)
        chunks.forget()  # (a sealed chunk's records may have changed: pickled again)
        for name, saved in list(self._saved.items()):
            text, count = pattern.subn(lambda _m: new, json.dumps(saved))
            if count:
                self._saved[name] = json.loads(text)
                changed += count
        return changed

    @contextlib.contextmanager
    def settling(self, what: str) -> Iterator[None]:
        with self._changed_lock:
            self._settling[what] += 1
        try:
            yield
        finally:
            with self._changed_lock:
                self._settling[what] -= 1
                if self._settling[what] <= 0:
                    del self._settling[what]

    # -- versions and loading --------------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        return {"format": FORMAT, "moto": moto_version()}

    def load(self) -> None:
        """Put the saved records back into moto and read the services' states; StateError when they cannot be."""
        started = time.perf_counter()
        path = self.root / VERSION_FILE
        if not path.exists():
            if self.store.files() or (self.services_dir.is_dir() and any(self.services_dir.iterdir())):
                raise StateError(f"{path} is missing, but {self.root} holds saved records: it is not a whole state "
                                 "folder (a partial copy?)")
            write_atomic(path, json.dumps(self.version()).encode(), self.sync)
            return
        saved, mine = read_json(path), self.version()
        if not isinstance(saved, dict) or saved.get("format") != mine["format"] or saved.get("moto") != mine["moto"]:
            found = saved if isinstance(saved, dict) else {}
            raise StateError(f"the lab's saved state in {self.root} was written by a labkit with state format "
                             f"{found.get('format')} and moto {found.get('moto')}; this labkit writes format "
                             f"{mine['format']} with moto {mine['moto']} and cannot read it")
        self.store.load_all()
        self.store.blobs.collect(self.store.blobs.read_digests)
        for file in sorted(self.services_dir.glob("*.json")) if self.services_dir.is_dir() else []:
            self._saved[file.stem] = read_json(file)
            self._written[file.stem] = file.read_bytes()
        if (self.root / RELOCATE_FILE).exists():
            self.relocation = read_json(self.root / RELOCATE_FILE)
        self.restored = True
        self.load_seconds = time.perf_counter() - started

    # -- saving ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def request_lock(self, call: Any) -> Iterator[None]:
        """A request that may change moto's records holds its service's lock until they are saved (a save never
        reads a half-made change). A lock held too long (a request whose hooks call the same service: none in
        the lab) is given up on, with a warning, rather than waited for forever."""
        service = self.store.service_for(call.service) if changes_records(call.operation) else None
        if service is None:
            yield
            return
        lock = self.store.locks[service]
        got = lock.acquire(timeout=LOCK_PATIENCE)
        if not got:
            self.lock_waits += 1
            log.warning("%s waited %.0f s for the state lock of %s; going on without it", call.operation,
                        LOCK_PATIENCE, service)
        try:
            yield
        finally:
            if got:
                lock.release()

    def after_request(self, call: Any, status: int) -> None:
        """A request was answered ``status``; if it may have changed records, save them before the answer leaves."""
        if status >= 400 or not changes_records(call.operation) or self._batched_request(call):
            return
        try:
            self.store.save_request(call.service, call.region)
            self.save_services(only_changed=True)
        except Exception as exc:  # the answer stands; the failure is shown by health and every labkit command
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("saving the lab's state after %s failed", call.operation)

    @contextlib.contextmanager
    def batch(self) -> Iterator[dict[str, str]]:
        """Requests sent meanwhile with the yielded header are saved once, when the block ends (before it
        returns), instead of one by one before each answer. Only the daemon knows the header's value, and only
        code that reads those answers itself (nothing else sees them before the block ends) may use it."""
        with self._batch_lock:
            self._open_batches += 1
        try:
            yield {BATCH_HEADER: self._batch_token}
        finally:
            with self._batch_lock:
                self._open_batches -= 1
            self._save_batched()

    def _batched_request(self, call: Any) -> bool:
        """True (and noted for the batch's save) for a request of an open batch."""
        offered = call.request.headers.get(BATCH_HEADER)
        if not offered or not hmac.compare_digest(offered.encode(), self._batch_token.encode()):
            return False
        with self._batch_lock:
            if self._open_batches <= 0:  # (its sender gave up waiting for the answer: saved as any request is)
                return False
            self._batched.add((call.service, call.region))
        return True

    def _save_batched(self) -> None:
        """Save what the batches' requests changed. A batch ending while another's save runs waits for it (that
        save may hold this batch's changes)."""
        with self._batch_save_lock:
            with self._batch_lock:
                batched, self._batched = self._batched, set()
            try:
                for service, region in sorted(batched, key=str):
                    self.store.save_request(service, region)
                self.save_services(only_changed=True)
            except Exception as exc:  # as after_request: shown by health and every labkit command
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("saving the lab's state after a batch of requests failed")

    def save_services(self, only_changed: bool = False) -> None:
        """Each service's own state file, written when it differs from the last one written. ``save_state()`` is
        quick and takes no lock held across a request or a process."""
        with self._changed_lock:
            changed, self._changed = self._changed, set()
        for service in self.services:
            if only_changed and service.name not in changed:
                continue
            state = service.save_state()
            if state is None:
                continue
            data = json.dumps(state, sort_keys=True, default=str).encode()
            if self._written.get(service.name) != data:
                write_atomic(self.services_dir / f"{service.name}.json", data, self.sync)
                self._written[service.name] = data

    def save_everything(self) -> None:
        self.store.save_all()
        self.save_services()
        write_atomic(self.root / VERSION_FILE, json.dumps(self.version()).encode(), self.sync)

    def serve(self, services: Iterable[Any]) -> None:
        """The services are started: save what a start changed (a checkpoint taken in: addresses moved, keys
        replaced), then write marked changes every half second."""
        self.services = services
        if self.relocation is not None:
            self.save_everything()
            threading.Thread(target=self._finish_taking_in, daemon=True, name="state-take-in").start()
        self._stop = threading.Event()
        threading.Thread(target=self._flush_loop, args=(self._stop,), daemon=True, name="state-flush").start()

    def _finish_taking_in(self, patience: float = 900.0) -> None:
        """Once the services have taken in a checkpoint's files (its databases imported, its instances booted), the
        files and the manifest go: until then a crash of the cloud makes the next start take them in again (each
        service's part of it can be done twice)."""
        deadline = time.monotonic() + patience
        while self._settling and time.monotonic() < deadline:
            time.sleep(0.2)
        self.save_everything()
        (self.root / RELOCATE_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.root / "import", ignore_errors=True)
        self.relocation = None

    def _flush_loop(self, stop: threading.Event, interval: float = 0.5) -> None:
        while not stop.wait(interval):
            try:
                self.commit()
            except Exception as exc: # shown in health; the next round tries again
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("saving background changes failed")

    def close(self) -> None:
        """The daemon stops (its services have): save everything once more."""
        self._stop.set()
        try:
            self.save_everything()
        except Exception:
            log.exception("the final save of the lab's state failed")
        for journal in self._journals.values():
            journal.close()

    def reset(self) -> None:
        """``labkit cloud reset``: the empty lab is the saved one now."""
        for folder in ("moto", "services", "import"):
            shutil.rmtree(self.root / folder, ignore_errors=True)
        (self.root / RELOCATE_FILE).unlink(missing_ok=True)
        self._saved.clear()
        self._written.clear()
        self.store.blobs.collect(set())
        self.save_everything()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """No record changes while held (every service's lock): for a checkpoint's consistent copy."""
        services = sorted({bd.service_name for bd in in_use()})
        locks = [self.store.locks[s] for s in services]
        for lock in locks:
            lock.acquire()
        try:
            self.save_everything()
            yield
        finally:
            for lock in reversed(locks):
                lock.release()

    def audit(self) -> dict[str, dict[str, int]]:
        """Objects of another moto service each backend's save would copy instead of referring to, by class."""
        found = {}
        for key, backend in iter_backends():
            foreign = pickling.audit(backend, self.store.rules)
            if foreign:
                found["/".join(key)] = foreign
        return found

    def journals(self) -> list[Path]:
        return [journal.path for journal in self._journals.values()]

    def summary(self) -> dict[str, Any]:
        figures = self.store.figures
        with self._changed_lock:
            settling = sorted(self._settling)
        return {"enabled": True, "restored": self.restored, "load_seconds": round(self.load_seconds, 3),
                "sync": self.sync, "saves": figures["saves"], "bytes": figures["bytes"],
                "pickle_ms": round(figures["pickle_ms"], 1), "write_ms": round(figures["write_ms"], 1),
                "settling": settling, "lock_waits": self.lock_waits, "last_error": self.last_error}
