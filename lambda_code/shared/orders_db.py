"""Database access shared by the order Lambdas: the RDS secret, and one connection per warm container.

Packaged into each function's zip beside ``lambda_function.py``, with the RDS CA bundle
(``rds-ca-bundle.pem``): every connection uses TLS and verifies the server's certificate and its name (the
endpoint in the secret). pymysql comes from the layer.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

log = logging.getLogger(__name__)
# The RDS CA bundle, packaged beside this file. Over TLS, MySQL 8.4's caching_sha2_password login needs no RSA
# key exchange; the layer still carries `cryptography` for a client that connects without TLS.
CA_BUNDLE = Path(__file__).with_name("rds-ca-bundle.pem")
REQUIRED_KEYS = ("username", "password", "host", "dbname")
ACCESS_DENIED = 1045


class SecretFormatError(ValueError):
    """The secret is not the RDS-credentials JSON this code needs. Never carries the secret itself."""


class DatabaseError(RuntimeError):
    """The database could not be reached or refused the statement; the message names the problem."""


class ConfigurationError(RuntimeError):
    """An environment variable the function needs is not set; raised at init, the message names the variable."""


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

    def __init__(self, secret_id: str, fetch_secret: Callable[[str], str], connect_timeout: int = 5,
                 ca_bundle: Path = CA_BUNDLE) -> None:
        self.secret_id = secret_id
        self.ca_bundle = ca_bundle
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
        if not self.ca_bundle.is_file():
            raise DatabaseError(f"the RDS CA bundle {self.ca_bundle.name} is not packaged beside {Path(__file__).name}, "
                                "so the database server cannot be verified (package the function with labkit)")
        return pymysql.connect(host=s.host, port=s.port, user=s.username, password=s.password, database=s.dbname,
                               connect_timeout=self._connect_timeout, charset="utf8mb4", autocommit=False,
                               ssl_ca=str(self.ca_bundle), ssl_verify_cert=True, ssl_verify_identity=True)

    def _describe(self, exc: pymysql.err.Error) -> str:
        s = self.settings
        code = exc.args[0] if exc.args else "?"
        detail = str(exc.args[-1]) if exc.args else ""
        if "CERTIFICATE_VERIFY_FAILED" in detail:  # PyMySQL reports TLS failures as error 2003 "Can't connect"
            return (f"database {s.host}:{s.port} failed TLS verification against {self.ca_bundle.name} (check the "
                    f"bundle is the RDS CA bundle and the secret's host is the instance's endpoint): {detail} "
                    f"[MySQL error {code}]")
        reasons: dict[object, str] = {
            ACCESS_DENIED: "refused the login (check the secret's username and password)",
            2003: "could not be reached (check the security group allows 3306 from this function, and that the "
                  "instance is available)",
            1049: f"has no database {s.dbname!r} (check the secret's dbname)"}
        reason = reasons.get(code, "failed")
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


def required_setting(name: str, meaning: str) -> str:
    """The environment variable ``name``, or ConfigurationError naming it (``meaning``: what it should hold).

    Called at module level, so a function without it fails at init, on its first invocation after the change,
    as Lambda reports any init error (``errorType`` ConfigurationError), instead of quietly using a default.
    """
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"the environment variable {name} is not set on this function: set it to {meaning} "
                                 "(the function's configuration, Environment.Variables)")
    return value


def secret_name() -> str:
    """The Secrets Manager secret with the database credentials: ``DB_SECRET_NAME``, which the function requires."""
    return required_setting("DB_SECRET_NAME", "the name of the Secrets Manager secret that holds the database "
                                              "credentials (this lab's: order-db-secret)")
