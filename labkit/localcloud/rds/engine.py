"""The database engine behind an RDS instance: a MySQL-compatible server process and its data folder.

:class:`Engine` initialises a data folder, starts and stops the server, bootstraps the master user and database
as RDS does, and changes the master password; :class:`DbServer` is one instance's server and where it keeps its
data. The RDS service (:mod:`.service`) decides when, from moto's records and its watch over the processes.
"""
from __future__ import annotations

import gzip
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from labkit.localcloud.rds import tls as rds_tls

log = logging.getLogger("labkit.localcloud.rds")
# What RDS grants the master user (docs: "Master user account privileges"): no SUPER, FILE or SHUTDOWN.
MASTER_PRIVILEGES = ("SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, "
                     "SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, "
                     "REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, "
                     "EVENT, TRIGGER")
SERVER_BINARIES = ("mariadbd", "mysqld")
# Sized for a teaching data set (thousands of rows, a few connections), not for the defaults' production caches:
# an idle server holds about 56 MiB RSS instead of 90 (bench/bench_footprint.py). Caches and threads for a few
# connections (the defaults: a 2,000-table cache, 200 cached threads, four I/O and purge threads each) gave 1.1 MiB
# more (issue 28); a buffer pool at its 6 MiB minimum would give 0.3 more and was left at 16 MiB.
SIZED_FOR_TEACHING = ("--innodb-buffer-pool-size=16M", "--innodb-log-buffer-size=256K", "--key-buffer-size=8K",
                      "--performance-schema=OFF", "--thread-cache-size=4", "--table-open-cache=64",
                      "--host-cache-size=0", "--innodb-purge-threads=1", "--innodb-read-io-threads=1",
                      "--innodb-write-io-threads=1")
READY_TIMEOUT = 60.0
# The master user's login plugin. MySQL 8.4 on RDS logs users in with caching_sha2_password; a MySQL server here
# does the same. MariaDB has no server side of that plugin (its plugin folder holds auth_ed25519 and auth_pam;
# caching_sha2_password.so ships only with its client library), so there the user gets MariaDB's default.
LOGIN_PLUGINS = {"mysql": "caching_sha2_password", "mariadb": "mysql_native_password"}


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
        port: int = sock.getsockname()[1]
    return port


@dataclass
class DbServer:
    """One database server process and where it keeps its data."""

    identifier: str
    datadir: Path
    port: int
    admin_password: str
    flavour: str
    process: subprocess.Popen[bytes] | None = None
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

    def forget_socket_dir(self) -> None:
        """Remove the private folder of a deep data folder's socket, if one was made."""
        if self._short_socket_dir:
            shutil.rmtree(self._short_socket_dir, ignore_errors=True)
            self._short_socket_dir = None


class Engine:
    """The server binary of this machine (MariaDB or MySQL) and how the cloud runs it for an instance."""

    def __init__(self, env: Callable[[str], dict[str, str]]) -> None:
        self.binary = find_server_binary()
        self.flavour = self._flavour()
        self.env = env  # DB instance identifier -> the environment of its server process

    def _flavour(self) -> str:
        if not self.binary:
            return "none"
        out = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True).stdout
        return "mariadb" if "mariadb" in out.lower() else "mysql"

    def initialise(self, server: DbServer) -> None:
        for folder in (server.datadir, server.tmpdir):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        if server.flavour == "mariadb":
            installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
            if installer is None:
                raise RuntimeError(f"initialising {server.datadir} needs MariaDB's mariadb-install-db (or "
                                   "mysql_install_db), which is not on PATH: install the mariadb-server package")
            cmd = [installer, "--no-defaults", f"--datadir={server.datadir}", "--auth-root-authentication-method=normal",
                   "--skip-test-db", "--innodb-log-file-size=8M", f"--tmpdir={server.tmpdir}", *self._user_arg()]
        else:
            cmd = [str(self.binary), "--no-defaults", "--initialize-insecure", f"--datadir={server.datadir}",
                   f"--tmpdir={server.tmpdir}", *self._user_arg()]
        result = subprocess.run(cmd, capture_output=True, text=True, env=self.env(server.identifier))
        if result.returncode != 0:
            raise RuntimeError(f"initialising {server.datadir} failed: {result.stderr[-2000:]}")

    @staticmethod
    def _user_arg() -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def start(self, server: DbServer) -> None:
        if server.process and server.process.poll() is None:
            return
        args = [str(self.binary), "--no-defaults", f"--datadir={server.datadir}", f"--port={server.port}",
                "--bind-address=127.0.0.1", f"--socket={server.socket_path}",
                f"--pid-file={server.datadir / 'server.pid'}", f"--log-error={server.datadir / 'error.log'}",
                "--skip-name-resolve", *SIZED_FOR_TEACHING, "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci", "--default-time-zone=+00:00", "--max-connections=200",
                f"--tmpdir={server.tmpdir}", *self._user_arg()]
        if server.flavour == "mariadb":
            args += ["--innodb-log-file-size=8M", "--aria-pagecache-buffer-size=128K", "--query-cache-size=0"]
        else:
            args += ["--mysqlx=OFF", "--disable-log-bin"]
        if server.tls:
            args += server.tls.server_args()
        server.process = process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL, env=self.env(server.identifier),
                                                    start_new_session=True)
        self._wait_ready(server, process)

    def _wait_ready(self, server: DbServer, process: subprocess.Popen[bytes]) -> None:
        def accepting() -> bool:
            if process.poll() is not None:
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

    def admin(self, server: DbServer, password: str | None) -> pymysql.Connection:
        return pymysql.connect(host="127.0.0.1", port=server.port, user="root",
                               password=password if password is not None else server.admin_password,
                               autocommit=True, connect_timeout=5)

    def bootstrap(self, server: DbServer, user: str, password: str, db_name: str | None) -> None:
        """Create the master user and database, then lock root behind a password only the cloud holds."""
        conn = self.admin(server, password="")
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

    def stop(self, server: DbServer) -> None:
        proc = server.process
        if not proc or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def set_password(self, server: DbServer, user: str, password: str) -> None:
        """The master user's new password (ModifyDBInstance MasterUserPassword)."""
        conn = self.admin(server, password=None)
        try:
            with conn.cursor() as cur:
                cur.execute(f"ALTER USER %s@'%%' {_identified(server.flavour)} %s", (user, password))
        finally:
            conn.close()

    def dump(self, server: DbServer, path: Path) -> None:
        """The running server's every database as SQL, gzipped (``--single-transaction``: consistent without
        stopping it, and readable by another MariaDB or MySQL version, which a data folder is not)."""
        tool = shutil.which("mariadb-dump") or shutil.which("mysqldump")
        if tool is None:
            raise RuntimeError("no mariadb-dump or mysqldump on this machine; run `make setup`")
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wb", compresslevel=1) as out:
            proc = subprocess.run([tool, "--user=root", "--host=127.0.0.1", f"--port={server.port}",
                                   "--single-transaction", "--routines", "--events", "--triggers", "--all-databases",
                                   "--add-drop-database"], capture_output=True,
                                  env={"MYSQL_PWD": server.admin_password, "PATH": os.environ.get("PATH", "")})
            if proc.returncode != 0:
                raise RuntimeError(f"dumping {server.identifier} failed: {proc.stderr.decode(errors='replace')[-500:]}")
            out.write(proc.stdout)

    def load_dump(self, server: DbServer, path: Path) -> None:
        """Run a dump made by :meth:`dump` in a fresh, running server (its users come with it)."""
        client = shutil.which("mariadb") or shutil.which("mysql")
        if client is None:
            raise RuntimeError("no mariadb or mysql client on this machine; run `make setup`")
        with gzip.open(path, "rb") as dump:
            sql = dump.read()
        proc = subprocess.run([client, "--user=root", "--host=127.0.0.1", f"--port={server.port}"], input=sql,
                              capture_output=True,
                              env={"MYSQL_PWD": server.admin_password, "PATH": os.environ.get("PATH", "")})
        if proc.returncode != 0:
            raise RuntimeError(f"loading {path.name} into {server.identifier} failed: "
                               f"{proc.stderr.decode(errors='replace')[-500:]}")
        conn = self.admin(server, password=None)
        try:
            with conn.cursor() as cur:
                cur.execute("FLUSH PRIVILEGES")
        finally:
            conn.close()

    def remove(self, server: DbServer) -> None:
        """Stop the server and remove its data, temporary and TLS folders."""
        self.stop(server)
        for folder in (server.datadir, server.tmpdir, server.tls_dir):
            shutil.rmtree(folder, ignore_errors=True)
        server.forget_socket_dir()


def _identified(flavour: str) -> str:
    """The ``IDENTIFIED ...`` clause (before the password) that gives a user the flavour's login plugin."""
    return f"IDENTIFIED WITH {LOGIN_PLUGINS['mysql']} BY" if flavour == "mysql" else "IDENTIFIED BY"


def _ident(name: str) -> str:
    if not name or "`" in name or len(name) > 64:
        raise ValueError(f"invalid identifier {name!r}")
    return name
