"""What never leaves a recorded API call: secrets are hidden, bytes become their size.

One definition for both records of API calls: labkit's own (:mod:`labkit.calls`, what a step asked AWS) and
the local cloud's event history (:mod:`labkit.localcloud.cloudtrail`, as CloudTrail's). AWS hides the same things
in CloudTrail: a secret's value, passwords and user data never appear in an event.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"  # CloudTrail's own wording for a value it does not record
# parameter names whose value is a secret (case-insensitive, anywhere in the name)
SECRET_NAMES = re.compile(r"password|secretstring|secretbinary|secretaccesskey|sessiontoken|privatekey|passphrase"
                          r"|authtoken|userdata|credentials$", re.IGNORECASE)
# names of environment variables whose value looks secret
SECRET_VARIABLES = re.compile(r"pass|secret|token|(^|_)key$|credential|auth", re.IGNORECASE)
NAMES_A_THING = re.compile(r"(^|_)(name|id|arn|url|endpoint|region)$", re.IGNORECASE)  # DB_SECRET_NAME is not secret
ENVIRONMENTS = {"Environment", "environment"}


@dataclass(frozen=True)
class Blob:
    """Bytes (or a base64 text of bytes) that were sent: only their size is kept."""

    size: int
    name: str = ""

    def __str__(self) -> str:
        return f"<{self.size:,} bytes>"


@dataclass(frozen=True)
class Hidden:
    """A secret that was sent: only that it was there is kept (and its size)."""

    name: str
    size: int = 0

    def __str__(self) -> str:
        return HIDDEN


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAMES.search(name))


def redact(value: Any, name: str = "", limit: int = 2000) -> Any:
    """A copy of ``value`` (API parameters) with every secret hidden and every byte string reduced to its size.

    ``name`` is the parameter the value belongs to; strings longer than ``limit`` characters are kept as
    :class:`Blob` (a policy document or a base64 archive is not a "key parameter").
    """
    if name and is_secret_name(name):
        return Hidden(name, _size(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Blob(len(value), name)
    if hasattr(value, "read"):  # a file-like body (S3 uploads)
        return Blob(-1, name)
    if isinstance(value, dict):
        if name in ENVIRONMENTS and isinstance(value.get("Variables"), dict):
            variables = {k: (Hidden(k, _size(v)) if _secret_variable(k) else redact(v, k, limit))
                         for k, v in value["Variables"].items()}
            return {**{k: redact(v, k, limit) for k, v in value.items() if k != "Variables"}, "Variables": variables}
        return {k: redact(v, str(k), limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, name, limit) for v in value]
    if isinstance(value, str) and len(value) > limit:
        return Blob(len(value.encode()), name)
    return value


def _secret_variable(name: str) -> bool:
    return bool(SECRET_VARIABLES.search(name)) and not NAMES_A_THING.search(name)


def _size(value: Any) -> int:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if isinstance(value, str):
        return len(value.encode())
    return 0


def plain(value: Any) -> Any:
    """JSON-able form of redacted parameters (Hidden -> CloudTrail's marker, Blob -> its description)."""
    if isinstance(value, (Hidden, Blob)):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
