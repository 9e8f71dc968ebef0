"""RDS data plane: one real MySQL-compatible server process per DB instance.

moto keeps the RDS records; :mod:`.patches` hands its create/stop/start/modify/delete to the
``on_*`` hooks here, so that each instance of engine ``mysql`` or ``mariadb`` is a MariaDB (or MySQL)
server on 127.0.0.1 with the requested master user, password and database (:mod:`.engine` runs it). Status
reads ``creating`` until the server accepts connections.

As RDS does, the cloud watches each engine: one that dies is restarted without any user action (InnoDB
recovers what was committed), the instance reads ``rebooting`` meanwhile, and DescribeEvents tells the
story with RDS's own categories and messages (:mod:`.events`: RDS-EVENT-0020 recovery started, 0021
complete, 0006 restarted). RebootDBInstance really restarts the engine (``rebooting`` -> ``available``). In realistic mode
(:mod:`labkit.localcloud.core.timing`) a reboot or a recovery keeps the engine down and the instance ``rebooting``
for ``rds_reboot`` seconds of lab time, and a new instance reads ``creating`` for ``rds_create``.

Each server serves TLS as RDS does (:mod:`.tls`): a certificate for its endpoint, signed by the cloud's
RDS CA, so clients that carry the CA's certificate (the RDS CA bundle on AWS) verify it by name.

A restart of the cloud is what RDS shows after a host failure (issue 23): the data folders are kept; each
available instance's engine starts again (InnoDB recovers what was committed), ``rebooting`` meanwhile, then
``available`` with "DB instance restarted" in DescribeEvents; a stopped one stays stopped; one caught ``creating``
is created again. A checkpoint carries each running database as SQL, imported into a fresh engine when restored.
"""
from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from moto.rds.models import rds_backends

from labkit.localcloud.core.services import CloudContext, Service
from labkit.localcloud.core.timing import TimingService
from labkit.localcloud.network.service import NetworkService
from labkit.localcloud.rds import tls as rds_tls
from labkit.localcloud.rds.engine import DbServer, Engine, free_port
from labkit.localcloud.rds.events import add_event

log = logging.getLogger("labkit.localcloud.rds")
ENGINES = ("mysql", "mariadb")
WATCH_SECONDS = 1.0


class RdsService(Service):
    """Starts, stops and deletes the servers behind moto's RDS records."""

    name = "rds"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.servers: dict[str, DbServer] = {}
        self.engine = Engine(lambda identifier: ctx.child_env("rds", identifier))
        self._stopped = threading.Event()
        self.ca_dir = ctx.home / "rds-ca"  # RDS's certificate authority for this cloud (made by start())
        self._saved: dict[str, dict[str, Any]] = {}
        self._restored = False

    def _network(self) -> NetworkService:
        """The network model: it gives each DB instance its endpoint address and decides who reaches it."""
        return self.ctx.services.require(NetworkService)

    def _now(self) -> float:
        timing = self.ctx.services.find(TimingService)
        return timing.now() if timing is not None else time.time()

    def _wait(self, kind: str, since: float) -> None:
        """The time AWS takes for ``kind`` since ``since`` (lab time), in realistic mode; nothing otherwise."""
        timing = self.ctx.services.find(TimingService)
        if timing is not None:
            timing.wait(kind, since)

    def summary(self) -> dict[str, Any]:
        return {"server_binary": str(self.engine.binary) if self.engine.binary else None, "flavour": self.engine.flavour,
                "ca_certificate": str(self.ca_dir / rds_tls.CA_FILE),
                "instances": {k: {"port": s.port, "running": bool(s.process and s.process.poll() is None),
                                  "pid": s.process.pid if s.process else None, "tls": s.tls is not None,
                                  "recoveries": s.recoveries} for k, s in self.servers.items()}}

    # -- moto hooks ------------------------------------------------------------------------------
    def on_create(self, db: Any) -> None:
        if str(db.engine).lower() not in ENGINES:
            return
        if not self.engine.binary:
            db.status = "failed"
            log.error("no MySQL-compatible server binary; run `make setup` (installs mariadb-server)")
            return
        server = DbServer(db.db_instance_identifier, self.ctx.service_dir("rds") / db.db_instance_identifier,
                          free_port(), secrets.token_urlsafe(24), self.engine.flavour)
        server.db = db
        self.servers[server.identifier] = server
        self.ctx.state.changed(self.name)
        (server.address, db.port) = self._network().add_db(server.identifier, server.port)
        db.status = "creating"
        threading.Thread(target=self._create, args=(db, server, self._now()), daemon=True,
                         name=f"rds-create-{server.identifier}").start()

    def _create(self, db: Any, server: DbServer, since: float, dump: Path | None = None) -> None:
        """A new engine for ``db`` (with the data of a checkpoint's ``dump``, when it is taken in); in realistic
        mode it reads ``creating`` until ``rds_create`` has passed since ``since``."""
        with self.ctx.state.settling(f"rds:{server.identifier}"):
            try:
                with server.lock:
                    self.engine.initialise(server)
                    server.tls = rds_tls.issue_server_files(self.ca_dir, server.tls_dir, server.identifier,
                                                            (server.address,))
                    self.engine.start(server)
                    password = getattr(db, "_master_user_password", None) or ""
                    self.engine.bootstrap(server, db.master_username, password, None if dump else db.db_name)
                    if dump is not None:
                        self.engine.load_dump(server, dump)
                if dump is None:
                    self._wait("rds_create", since)
                db.status = "available"
            except Exception:
                log.exception("creating DB instance %s failed", server.identifier)
                db.status = "failed"
            self._mark(db)

    def _mark(self, db: Any) -> None:
        """A status set outside a request: saved within half a second."""
        self.ctx.state.mark("rds", db.region)

    def on_stop(self, db: Any) -> None:
        server = self.servers.get(db.db_instance_identifier)
        if not server:
            return
        db.status = "stopping"

        def stop() -> None:
            with server.lock:
                self.engine.stop(server)
            db.status = "stopped"
            add_event(db, "DB_INSTANCE_STOPPED")
            self._mark(db)

        threading.Thread(target=stop, daemon=True).start()

    def on_start(self, db: Any) -> None:
        server = self.servers.get(db.db_instance_identifier)
        if not server:
            return
        db.status = "starting"

        def start() -> None:
            try:
                with server.lock:
                    self.engine.start(server)
                db.status = "available"
                add_event(db, "DB_INSTANCE_STARTED")
            except Exception:
                log.exception("starting DB instance %s failed", server.identifier)
                db.status = "failed"
            self._mark(db)

        threading.Thread(target=start, daemon=True).start()

    def on_reboot(self, db: Any) -> None:
        """RebootDBInstance: shut the engine down cleanly and start it again, ``rebooting`` meanwhile."""
        server = self.servers.get(db.db_instance_identifier)
        if not server:
            return
        db.status = "rebooting"
        since = self._now()

        def reboot() -> None:
            with server.lock:
                self.engine.stop(server)
                add_event(db, "DB_INSTANCE_SHUTDOWN")
                self._restart(server, db, since=since)
            self._mark(db)

        threading.Thread(target=reboot, daemon=True, name=f"rds-reboot-{server.identifier}").start()

    # -- what RDS does when an engine dies -------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stopped.wait(WATCH_SECONDS):
            for server in list(self.servers.values()):
                proc, db = server.process, server.db
                if proc is None or db is None or proc.poll() is None or db.status != "available":
                    continue
                if not server.lock.acquire(blocking=False):
                    continue  # a stop, start or reboot is under way: that is not a crash
                try:
                    if server.process is proc and db.status == "available":
                        self._recover(server, db, proc.returncode)
                finally:
                    server.lock.release()

    def _recover(self, server: DbServer, db: Any, returncode: int) -> None:
        log.warning("DB instance %s: the engine exited (%s); restarting it", server.identifier, returncode)
        server.recoveries += 1
        self.ctx.state.changed(self.name)
        db.status = "rebooting"
        add_event(db, "DB_INSTANCE_RECOVERY_START")
        if self._restart(server, db, since=self._now()):
            add_event(db, "DB_INSTANCE_RECOVERY_FINISH")
        self._mark(db)

    def _restart(self, server: DbServer, db: Any, attempts: int = 3, since: float | None = None) -> bool:
        """Start the engine again (InnoDB replays its redo log); ``available`` once it accepts connections. In
        realistic mode the engine stays down until ``rds_reboot`` has passed since ``since``."""
        if since is not None:
            stopped = self._stopped
            self._wait("rds_reboot", since)
            if stopped.is_set():  # the cloud stopped or was reset meanwhile: start nothing
                return False
        for attempt in range(1, attempts + 1):
            try:
                self.engine.start(server)
            except Exception as exc:
                message = str(exc).splitlines()[0][:200]
                log.error("DB instance %s: restart %d failed: %s", server.identifier, attempt, message)
                add_event(db, "DB_INSTANCE_RESTART_ERROR", message=message)
                time.sleep(1)
                continue
            db.status = "available"
            add_event(db, "DB_INSTANCE_RESTARTED")
            return True
        db.status = "failed"
        return False

    def on_modify(self, db: Any, new_password: str | None) -> None:
        """ModifyDBInstance with MasterUserPassword changes the real server's password."""
        server = self.servers.get(db.db_instance_identifier)
        if not server or not new_password:
            return
        with server.lock:
            self.engine.set_password(server, db.master_username, new_password)

    def on_delete(self, db: Any) -> None:
        server = self.servers.pop(db.db_instance_identifier, None)
        self.ctx.state.changed(self.name)
        self._network().remove_db(db.db_instance_identifier)
        if server:
            with server.lock:
                self.engine.remove(server)

    def stop_all(self) -> None:
        self._stopped.set()
        threads = [threading.Thread(target=self.engine.stop, args=(s,)) for s in self.servers.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def start(self) -> None:
        imported = self.ctx.state.imported(self.name)
        taking_in = self.ctx.state.relocation is not None  # a checkpoint: its databases are in SQL, not folders
        self.ctx.service_dir("rds", fresh=not self._restored or taking_in)
        if imported is not None and (imported / "rds-ca").is_dir():  # clients that trust its CA keep trusting it
            shutil.rmtree(self.ca_dir, ignore_errors=True)
            shutil.copytree(imported / "rds-ca", self.ca_dir)
        rds_tls.ensure_ca(self.ctx.service_dir("rds-ca", fresh=not self._restored))
        self._stopped.clear()
        threading.Thread(target=self._watch, daemon=True, name="rds-watch").start()
        if self._restored:
            self._boot_restored(imported)

    # -- what a restart keeps (issue 23) ------------------------------------------------------------------
    def save_state(self) -> dict[str, Any]:
        """Per server: the engine's root password (to administer it), its flavour and recoveries."""
        return {k: {"admin_password": s.admin_password, "flavour": s.flavour, "recoveries": s.recoveries}
                for k, s in list(self.servers.items())}

    def load_state(self, saved: dict[str, Any] | None, restored: bool) -> None:
        self._saved, self._restored = saved or {}, restored

    def _boot_restored(self, imported: Path | None) -> None:
        """Each saved DB instance as RDS shows it after a host failure (see the module's docstring)."""
        known = set()
        for _account, per_account in list(dict.items(rds_backends)):
            for _region, backend in list(dict.items(per_account)):
                for db in list(backend.databases.values()):
                    if str(db.engine).lower() in ENGINES:
                        known.add(db.db_instance_identifier)
                        self._boot_one(db, self._saved.get(db.db_instance_identifier), imported)
        for orphan in set(self._saved) - known:  # a server whose record was deleted: its data belongs to nothing
            for suffix in ("", ".tmp", ".tls"):
                shutil.rmtree(self.ctx.service_dir("rds") / f"{orphan}{suffix}", ignore_errors=True)

    def _boot_one(self, db: Any, info: dict[str, Any] | None, imported: Path | None) -> None:
        identifier = db.db_instance_identifier
        dump = imported / f"{identifier}.sql.gz" if imported is not None else None
        folder = imported / identifier if imported is not None else None
        if info is None or db.status == "creating" or not self.engine.binary:
            self.on_create(db)  # nothing of its data was acknowledged but the record
            return
        server = DbServer(identifier, self.ctx.service_dir("rds") / identifier, free_port(), info["admin_password"],
                          info.get("flavour", self.engine.flavour))
        server.db, server.recoveries = db, int(info.get("recoveries", 0))
        server.address = self._network().db_address(identifier)
        self.servers[identifier] = server
        self._network().attach_db(identifier, server.port)
        if folder is not None and folder.is_dir():  # a stopped database of a checkpoint: its data folder
            shutil.rmtree(server.datadir, ignore_errors=True)
            shutil.move(str(folder), server.datadir)
        if db.status in ("stopped", "stopping"):
            db.status = "stopped"
            return
        if dump is not None and dump.is_file():
            db.status = "creating"
            threading.Thread(target=self._create, args=(db, server, self._now(), dump), daemon=True,
                             name=f"rds-import-{identifier}").start()
            return
        db.status = "rebooting"
        threading.Thread(target=self._reboot_restored, args=(db, server), daemon=True,
                         name=f"rds-restart-{identifier}").start()

    def _reboot_restored(self, db: Any, server: DbServer) -> None:
        with self.ctx.state.settling(f"rds:{server.identifier}"):
            with server.lock:
                server.tls = rds_tls.issue_server_files(self.ca_dir, server.tls_dir, server.identifier,
                                                        (server.address,))
                self._restart(server, db)
            self._mark(db)

    def export_state(self, folder: Path) -> dict[str, Any]:
        """A checkpoint: each running database as SQL (no downtime), a stopped one as its data folder; the CA."""
        databases = {}
        for identifier, server in list(self.servers.items()):
            with server.lock:
                if server.process is not None and server.process.poll() is None:
                    self.engine.dump(server, folder / f"{identifier}.sql.gz")
                    databases[identifier] = "sql"
                elif server.datadir.is_dir():
                    shutil.copytree(server.datadir, folder / identifier, symlinks=True,
                                    ignore=shutil.ignore_patterns("*.sock", "server.pid"))
                    databases[identifier] = "datadir"
        if self.ca_dir.is_dir():
            shutil.copytree(self.ca_dir, folder / "rds-ca")
        return {"databases": databases, "flavour": self.engine.flavour}

    def after_reset(self) -> None:
        for server in self.servers.values():
            server.forget_socket_dir()
        self.servers.clear()
        self.ctx.service_dir("rds", fresh=True)
        self._stopped.set()
        self._stopped = threading.Event()
        threading.Thread(target=self._watch, daemon=True, name="rds-watch").start()

