"""Database access shared by the order Lambdas: the RDS secret, and one connection per warm container.

Packaged into each function's zip beside ``lambda_function.py``. pymysql comes from the layer.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import pymysql

log = logging.getLogger(__name__)
REQUIRED_KEYS = ("username", "password", "host", "dbname")
ACCESS_DENIED = 1045


class SecretFormatError(ValueError):
    """The secret is not the RDS-credentials JSON this code needs. Never carries the secret itself."""


class DatabaseError(RuntimeError):
    """The database could not be reached or refused the statement; the message names the problem."""


@dataclass(frozen=True)
class DbSettings:
    host: str
    port: int
    username: str
    dbname: str
    password: str = field(repr=False)


def parse_secret(secret_string: str | None) -> DbSettings:
    """Read AWS's "Credentials for RDS database" JSON (``db`` accepted for ``dbname``, port 3306 by default)."""
    try:
        data = json.loads(secret_string or "")
    except ValueError:
        raise SecretFormatError("the secret is not JSON; store it as key/value pairs "
                                f"({', '.join(REQUIRED_KEYS)}, port)") from None
    if not isinstance(data, dict):
        raise SecretFormatError("the secret must be a JSON object with " + ", ".join(REQUIRED_KEYS))
    if "dbname" not in data and "db" in data:
        data["dbname"] = data["db"]
    missing = [key for key in REQUIRED_KEYS if not data.get(key)]
    if missing:
        raise SecretFormatError(f"the secret lacks {', '.join(missing)} (it needs {', '.join(REQUIRED_KEYS)}, port)")
    try:
        port = int(data.get("port") or 3306)
    except (TypeError, ValueError):
        raise SecretFormatError("the secret's port is not a number") from None
    return DbSettings(str(data["host"]), port, str(data["username"]), str(data["dbname"]), str(data["password"]))


class Database:
    """The secret and connection of one warm container: fetched once, reused, re-opened when stale."""

    def __init__(self, secret_id: str, fetch_secret: Callable[[str], str], connect_timeout: int = 5) -> None:
        self.secret_id = secret_id
        self._fetch_secret = fetch_secret
        self._settings: DbSettings | None = None
        self._conn: pymysql.connections.Connection | None = None
        self._connect_timeout = connect_timeout

    @property
    def settings(self) -> DbSettings:
        if self._settings is None:
            self._settings = parse_secret(self._fetch_secret(self.secret_id))
        return self._settings

    def connection(self) -> pymysql.connections.Connection:
        """An open connection; a stale one is re-opened, and a refused login re-reads a rotated secret once."""
        if self._conn is not None:
            try:
                self._conn.ping(reconnect=False)
                return self._conn
            except pymysql.err.Error:
                self.close()
        try:
            self._conn = self._connect()
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] == ACCESS_DENIED:
                self._settings = None  # the password may have been rotated
                try:
                    self._conn = self._connect()
                    return self._conn
                except pymysql.err.OperationalError as again:
                    exc = again
            raise DatabaseError(self._describe(exc)) from None
        return self._conn

    def _connect(self) -> pymysql.connections.Connection:
        s = self.settings
        return pymysql.connect(host=s.host, port=s.port, user=s.username, password=s.password, database=s.dbname,
                               connect_timeout=self._connect_timeout, charset="utf8mb4", autocommit=False)

    def _describe(self, exc: pymysql.err.Error) -> str:
        s = self.settings
        code = exc.args[0] if exc.args else "?"
        reason = {ACCESS_DENIED: "refused the login (check the secret's username and password)",
                  2003: "could not be reached (check the security group allows 3306 from this function, and "
                        "that the instance is available)",
                  1049: f"has no database {s.dbname!r} (check the secret's dbname)"}.get(code, "failed")
        return f"database {s.host}:{s.port} {reason} [MySQL error {code}]"

    def run(self, work: Callable[[Any], Any]) -> Any:
        """Run ``work(cursor)`` in a transaction; commit on success, roll back and raise DatabaseError on failure."""
        conn = self.connection()
        try:
            with conn.cursor() as cur:
                result = work(cur)
            conn.commit()
            return result
        except pymysql.err.Error as exc:
            try:
                conn.rollback()
            except pymysql.err.Error:
                self.close()
            raise DatabaseError(self._describe(exc)) from None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except pymysql.err.Error:
                pass
            self._conn = None


def secret_name() -> str:
    return os.environ.get("DB_SECRET_NAME", "order-db-secret")
