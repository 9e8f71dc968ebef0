"""RDS data plane: one real MySQL-compatible server process per DB instance.

moto keeps the RDS records; :mod:`moto_patches_rds` hands its create/stop/start/modify/delete to the
``on_*`` hooks here, so that each instance of engine ``mysql`` or ``mariadb`` is a MariaDB (or MySQL)
server on 127.0.0.1 with the requested master user, password and database. Status reads
``creating`` until the server accepts connections.

As RDS does, the cloud watches each engine: one that dies is restarted without any user action (InnoDB
recovers what was committed), the instance reads ``rebooting`` meanwhile, and DescribeEvents tells the
story with RDS's own categories and messages (:mod:`rds_events`: RDS-EVENT-0020 recovery started, 0021
complete, 0006 restarted). RebootDBInstance really restarts the engine (``rebooting`` -> ``available``).

Each server serves TLS as RDS does (:mod:`rds_tls`): a certificate for its endpoint, signed by the cloud's
RDS CA, so clients that carry the CA's certificate (the RDS CA bundle on AWS) verify it by name.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from labkit.localcloud import rds_tls
from labkit.localcloud.network import NetworkModel
from labkit.localcloud.rds_events import add_event
from labkit.localcloud.services import CloudContext, Service

log = logging.getLogger("labkit.localcloud.rds")
ENGINES = ("mysql", "mariadb")
# What RDS grants the master user (docs: "Master user account privileges"): no SUPER, FILE or SHUTDOWN.
MASTER_PRIVILEGES = ("SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, "
                     "SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, "
                     "REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, "
                     "EVENT, TRIGGER")
SERVER_BINARIES = ("mariadbd", "mysqld")
# Sized for a teaching data set (thousands of rows, a few connections), not for the defaults' production caches:
# an idle server holds about 50 MiB instead of 90 (bench/bench_footprint.py).
SIZED_FOR_TEACHING = ("--innodb-buffer-pool-size=16M", "--innodb-log-buffer-size=2M", "--key-buffer-size=1M",
                      "--performance-schema=OFF")
READY_TIMEOUT = 60.0
# The master user's login plugin. MySQL 8.4 on RDS logs users in with caching_sha2_password; a MySQL server here
# does the same. MariaDB has no server side of that plugin (its plugin folder holds auth_ed25519 and auth_pam;
# caching_sha2_password.so ships only with its client library), so there the user gets MariaDB's default.
LOGIN_PLUGINS = {"mysql": "caching_sha2_password", "mariadb": "mysql_native_password"}
WATCH_SECONDS = 1.0


def find_server_binary() -> Path | None:
    """The MySQL-compatible server binary: ``mariadbd``/``mysqld`` on PATH or in /usr/sbin."""
    for name in SERVER_BINARIES:
        found = shutil.which(name) or (f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None)
        if found:
            return Path(found)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DbServer:
    """One database server process and where it keeps its data."""

    identifier: str
    datadir: Path
    port: int
    admin_password: str
    flavour: str
    process: subprocess.Popen | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _short_socket_dir: str | None = None
    db: Any = None  # moto's DBInstance record
    recoveries: int = 0
    address: str = "127.0.0.1"  # the endpoint's address: what clients connect to, and what the certificate names
    tls: rds_tls.TlsFiles | None = None

    @property
    def tmpdir(self) -> Path:
        """The server's own temporary folder (next to its data: inside it, it would be a database). A
        shared /tmp let concurrent bootstraps of other labs' servers break each other's temporary tables."""
        return self.datadir.with_name(f"{self.datadir.name}.tmp")

    @property
    def tls_dir(self) -> Path:
        """The server's certificate and key (next to its data, which a re-initialisation empties)."""
        return self.datadir.with_name(f"{self.datadir.name}.tls")

    @property
    def socket_path(self) -> str:
        """The server's Unix socket, inside its own (owner-only) data folder; never in a shared /tmp.

        Unix socket paths are limited to 108 bytes: a deep data folder gets a private (0700) folder of a
        random name instead, so no other account can reach or predict it.
        """
        inside = self.datadir / "mysqld.sock"
        if len(str(inside)) < 100:
            return str(inside)
        if self._short_socket_dir is None:
            self._short_socket_dir = tempfile.mkdtemp(prefix="labkit-db-")
        return str(Path(self._short_socket_dir) / "mysqld.sock")


class RdsData(Service):
    """Starts, stops and deletes the servers behind moto's RDS records."""

    name = "rds"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.servers: dict[str, DbServer] = {}
        self.binary = find_server_binary()
        self.flavour = self._flavour()
        self._stopped = threading.Event()
        self.ca_dir = ctx.home / "rds-ca"  # RDS's certificate authority for this cloud (made by start())

    def _flavour(self) -> str:
        if not self.binary:
            return "none"
        out = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True).stdout
        return "mariadb" if "mariadb" in out.lower() else "mysql"

    def _network(self) -> NetworkModel:
        """The network model: it gives each DB instance its endpoint address and decides who reaches it."""
        return self.ctx.services.require("network", NetworkModel)

    def summary(self) -> dict:
        return {"server_binary": str(self.binary) if self.binary else None, "flavour": self.flavour,
                "ca_certificate": str(self.ca_dir / rds_tls.CA_FILE),
                "instances": {k: {"port": s.port, "running": bool(s.process and s.process.poll() is None),
                                  "pid": s.process.pid if s.process else None, "tls": s.tls is not None,
                                  "recoveries": s.recoveries} for k, s in self.servers.items()}}

    # -- moto hooks ------------------------------------------------------------------------------
    def on_create(self, db: Any) -> None:
        if str(db.engine).lower() not in ENGINES:
            return
        if not self.binary:
            db.status = "failed"
            log.error("no MySQL-compatible server binary; run `make setup` (installs mariadb-server)")
            return
        server = DbServer(db.db_instance_identifier, self.ctx.service_dir("rds") / db.db_instance_identifier,
                          free_port(), secrets.token_urlsafe(24), self.flavour)
        server.db = db
        self.servers[server.identifier] = server
        (server.address, db.port) = self._network().add_db(server.identifier)
        db.status = "creating"
        threading.Thread(target=self._create, args=(db, server), daemon=True,
                         name=f"rds-create-{server.identifier}").start()

    def _create(self, db: Any, server: DbServer) -> None:
        try:
            with server.lock:
                self._initialise(server)
                server.tls = rds_tls.issue_server_files(self.ca_dir, server.tls_dir, server.identifier,
                                                        (server.address,))
                self._start(server)
                self._bootstrap(server, db.master_username, getattr(db, "_master_user_password", None) or "", db.db_name)
            db.status = "available"
        except Exception:
            log.exception("creating DB instance %s failed", server.identifier)
            db.status = "failed"

    def on_stop(self, db: Any) -> None:
        server = self.servers.get(db.db_instance_identifier)
        if not server:
            return
        db.status = "stopping"

        def stop() -> None:
            with server.lock:
                self._stop(server)
            db.status = "stopped"
            add_event(db, "DB_INSTANCE_STOPPED")

        threading.Thread(target=stop, daemon=True).start()

    def on_start(self, db: Any) -> None:
        server = self.servers.get(db.db_instance_identifier)
        if not server:
            return
        db.status = "starting"

        def start() -> None:
            try:
                with server.lock:
                    self._start(server)
                db.status = "available"
                add_event(db, "DB_INSTANCE_STARTED")
            except Exception:
                log.exception("starting DB instance %s failed", server.identifier)
                db.status = "failed"

        threading.Thread(target=start, daemon=True).start()

    def on_reboot(self, db: Any) -> None:
        """RebootDBInstance: shut the engine down cleanly and start it again, ``rebooting`` meanwhile."""
        server = self.servers.get(db.db_instance_identifier)
        if not server:
            return
        db.status = "rebooting"

        def reboot() -> None:
            with server.lock:
                self._stop(server)
                add_event(db, "DB_INSTANCE_SHUTDOWN")
                self._restart(server, db)

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
        db.status = "rebooting"
        add_event(db, "DB_INSTANCE_RECOVERY_START")
        if self._restart(server, db):
            add_event(db, "DB_INSTANCE_RECOVERY_FINISH")

    def _restart(self, server: DbServer, db: Any, attempts: int = 3) -> bool:
        """Start the engine again (InnoDB replays its redo log); ``available`` once it accepts connections."""
        for attempt in range(1, attempts + 1):
            try:
                self._start(server)
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
            conn = self._admin(server, password=None)
            try:
                with conn.cursor() as cur:
                    cur.execute(f"ALTER USER %s@'%%' {_identified(server.flavour)} %s",
                                (db.master_username, new_password))
            finally:
                conn.close()

    def on_delete(self, db: Any) -> None:
        server = self.servers.pop(db.db_instance_identifier, None)
        self._network().remove_db(db.db_instance_identifier)
        if server:
            with server.lock:
                self._stop(server)
                shutil.rmtree(server.datadir, ignore_errors=True)
                shutil.rmtree(server.tmpdir, ignore_errors=True)
                shutil.rmtree(server.tls_dir, ignore_errors=True)
                if server._short_socket_dir:
                    shutil.rmtree(server._short_socket_dir, ignore_errors=True)

    # -- the server process ----------------------------------------------------------------------
    def _initialise(self, server: DbServer) -> None:
        for folder in (server.datadir, server.tmpdir):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        if server.flavour == "mariadb":
            installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
            cmd = [installer, "--no-defaults", f"--datadir={server.datadir}", "--auth-root-authentication-method=normal",
                   "--skip-test-db", "--innodb-log-file-size=8M", f"--tmpdir={server.tmpdir}", *self._user_arg()]
        else:
            cmd = [str(self.binary), "--no-defaults", "--initialize-insecure", f"--datadir={server.datadir}",
                   f"--tmpdir={server.tmpdir}", *self._user_arg()]
        result = subprocess.run(cmd, capture_output=True, text=True, env=self.ctx.child_env("rds", server.identifier))
        if result.returncode != 0:
            raise RuntimeError(f"initialising {server.datadir} failed: {result.stderr[-2000:]}")

    @staticmethod
    def _user_arg() -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def _start(self, server: DbServer) -> None:
        if server.process and server.process.poll() is None:
            return
        args = [str(self.binary), "--no-defaults", f"--datadir={server.datadir}", f"--port={server.port}",
                "--bind-address=127.0.0.1", f"--socket={server.socket_path}",
                f"--pid-file={server.datadir / 'server.pid'}", f"--log-error={server.datadir / 'error.log'}",
                "--skip-name-resolve", *SIZED_FOR_TEACHING, "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci", "--default-time-zone=+00:00", "--max-connections=200",
                f"--tmpdir={server.tmpdir}", *self._user_arg()]
        if server.flavour == "mariadb":
            args += ["--innodb-log-file-size=8M", "--aria-pagecache-buffer-size=2M", "--query-cache-size=0"]
        else:
            args += ["--mysqlx=OFF", "--disable-log-bin"]
        if server.tls:
            args += server.tls.server_args()
        server.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL,
                                          env=self.ctx.child_env("rds", server.identifier),
                                          start_new_session=True)
        self._wait_ready(server)

    def _wait_ready(self, server: DbServer) -> None:
        def accepting() -> bool:
            if server.process.poll() is not None:
                log_tail = (server.datadir / "error.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"database server for {server.identifier} exited: {log_tail}")
            with socket.socket() as sock:
                sock.settimeout(0.2)
                return sock.connect_ex(("127.0.0.1", server.port)) == 0

        try:
            Retrying(retry=retry_if_result(lambda ok: not ok), stop=stop_after_delay(READY_TIMEOUT),
                     wait=wait_fixed(0.02))(accepting)
        except RetryError:
            raise RuntimeError(f"database server for {server.identifier} did not accept connections in time") from None

    def _admin(self, server: DbServer, password: str | None) -> pymysql.Connection:
        return pymysql.connect(host="127.0.0.1", port=server.port, user="root",
                               password=password if password is not None else server.admin_password,
                               autocommit=True, connect_timeout=5)

    def _bootstrap(self, server: DbServer, user: str, password: str, db_name: str | None) -> None:
        """Create the master user and database, then lock root behind a password only the cloud holds."""
        conn = self._admin(server, password="")
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE USER %s@'%%' {_identified(server.flavour)} %s", (user, password))
                cur.execute(f"GRANT {MASTER_PRIVILEGES} ON *.* TO `{_ident(user)}`@'%' WITH GRANT OPTION")
                if db_name:
                    cur.execute(f"CREATE DATABASE IF NOT EXISTS `{_ident(db_name)}` "
                                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
                cur.execute("SELECT user, host FROM mysql.user WHERE user IN ('root', '')")
                for admin_user, host in cur.fetchall():
                    if admin_user == "root" and host in ("localhost", "127.0.0.1", "::1"):
                        cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (admin_user, host, server.admin_password))
                    else:  # anonymous and host-named accounts would let anyone in
                        cur.execute("DROP USER IF EXISTS %s@%s", (admin_user, host))
                cur.execute("FLUSH PRIVILEGES")
        finally:
            conn.close()

    def _stop(self, server: DbServer) -> None:
        proc = server.process
        if not proc or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        self._stopped.set()
        threads = [threading.Thread(target=self._stop, args=(s,)) for s in self.servers.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def start(self) -> None:
        self.ctx.service_dir("rds", fresh=True)
        rds_tls.ensure_ca(self.ctx.service_dir("rds-ca", fresh=True))
        self._stopped.clear()
        threading.Thread(target=self._watch, daemon=True, name="rds-watch").start()

    def after_reset(self) -> None:
        for server in self.servers.values():
            if server._short_socket_dir:
                shutil.rmtree(server._short_socket_dir, ignore_errors=True)
        self.servers.clear()
        self.ctx.service_dir("rds", fresh=True)
        self._stopped.set()
        self._stopped = threading.Event()
        threading.Thread(target=self._watch, daemon=True, name="rds-watch").start()


def _identified(flavour: str) -> str:
    """The ``IDENTIFIED ...`` clause (before the password) that gives a user the flavour's login plugin."""
    return f"IDENTIFIED WITH {LOGIN_PLUGINS['mysql']} BY" if flavour == "mysql" else "IDENTIFIED BY"


def _ident(name: str) -> str:
    if not name or "`" in name or len(name) > 64:
        raise ValueError(f"invalid identifier {name!r}")
    return name
