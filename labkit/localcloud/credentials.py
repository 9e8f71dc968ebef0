"""The keys of the local cloud's IAM user ``lab-admin``, kept in the lab's state folder.

Shared by both sides: the daemon's IAM (:mod:`labkit.localcloud.iam`) makes the user with these keys whenever it
starts or is reset, and the client side (:func:`labkit.localcloud.control.admin_credentials`) reads them to sign
as that user. The file is an AWS shared-credentials file (profile ``labkit``), readable by its owner only.
"""
from __future__ import annotations

import configparser
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

ADMIN_USER = "lab-admin"
CREDENTIALS_FILE = "credentials"
PROFILE = "labkit"


@dataclass(frozen=True)
class AccessKeys:
    """An access key id and its secret (an IAM user's, or a principal of the cloud's own)."""

    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never show the secret
        return f"AccessKeys(access_key_id={self.access_key_id!r})"


def credentials_path(home: Path) -> Path:
    return Path(home) / CREDENTIALS_FILE


def read_admin_keys(home: Path) -> AccessKeys | None:
    """The admin user's keys of the cloud in ``home`` (None before the cloud first started there)."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(credentials_path(home).read_text())
        section = parser[PROFILE]
        return AccessKeys(section["aws_access_key_id"], section["aws_secret_access_key"])
    except (OSError, KeyError, configparser.Error):
        return None


def new_keys() -> AccessKeys:
    """A fresh long-term key pair, shaped as IAM's (``AKIA`` + 16 characters, a 40-character secret)."""
    alphabet = string.ascii_uppercase + "234567"
    key_id = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
    return AccessKeys(key_id, secret)


def ensure_admin_keys(home: Path) -> AccessKeys:
    """Read the admin keys of ``home`` or make them: a shared-credentials file readable by its owner only."""
    keys = read_admin_keys(home)
    path = credentials_path(home)
    if keys is not None:
        path.chmod(0o600)
        return keys
    keys = new_keys()
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"# The local cloud's IAM user {ADMIN_USER} (AdministratorAccess). Keep this file private.\n"
                  f"[{PROFILE}]\naws_access_key_id = {keys.access_key_id}\n"
                  f"aws_secret_access_key = {keys.secret_access_key}\n")
    tmp.replace(path)
    return keys
