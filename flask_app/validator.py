"""The Flask app's one dependency: the order-validator Lambda, behind a small typed client.

Timeouts and retries are sized to the function's timeout (``VALIDATOR_TIMEOUT_SECONDS``, the function's
configured Timeout): the client waits that long plus a margin, so a slow invocation ends with the function's
own answer (or its "Task timed out") instead of a client-side timeout; one retry follows a transport failure.
A retry is safe because the caller fixes the order id before the first attempt and every retry resends it.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)
MARGIN_SECONDS = 5.0
ATTEMPTS = 2


class ValidatorUnavailable(Exception):
    """The validator failed, timed out or could not be reached. The message is for logs, not for users."""


@dataclass(frozen=True)
class ValidationResult:
    status: str  # "accepted", "invalid" or "conflict"
    order_id: str | None = None
    duplicate: bool = False
    errors: dict[str, str] = field(default_factory=dict)


def function_timeout() -> float:
    """The validator function's configured timeout in seconds (Lambda's default, 3, when unset)."""
    try:
        return float(os.environ.get("VALIDATOR_TIMEOUT_SECONDS") or 3)
    except ValueError:
        return 3.0


class ValidatorClient:
    def __init__(self, function_name: str, timeout: float | None = None, client: Any = None) -> None:
        self.function_name = function_name
        self.timeout = function_timeout() if timeout is None else timeout
        self._client = client or boto3.client("lambda", config=Config(
            read_timeout=self.timeout + MARGIN_SECONDS, connect_timeout=5,
            retries={"total_max_attempts": ATTEMPTS, "mode": "standard"}))

    @property
    def worst_case_seconds(self) -> float:
        """How long ``submit`` may take at most: every attempt waiting for the function, plus backoff."""
        return ATTEMPTS * (self.timeout + MARGIN_SECONDS + 5) + 2 * ATTEMPTS

    def _invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.invoke(FunctionName=self.function_name, Payload=json.dumps(event).encode())
            payload = json.loads(response["Payload"].read() or b"null")
        except (BotoCoreError, ClientError, ValueError) as exc:
            raise ValidatorUnavailable(f"invoking {self.function_name} failed: {exc}") from exc
        if response.get("FunctionError"):
            message = payload.get("errorMessage", "") if isinstance(payload, dict) else ""
            raise ValidatorUnavailable(f"{self.function_name} failed: {message[:300]}")
        if not isinstance(payload, dict):
            raise ValidatorUnavailable(f"{self.function_name} returned an unexpected answer")
        return payload

    def submit(self, order: dict[str, Any]) -> ValidationResult:
        """Validate and store ``order`` (which carries its ``order_id``); safe to call again with the same order."""
        payload = self._invoke(order)
        status = payload.get("status")
        if status in ("invalid", "conflict"):
            return ValidationResult(status, order_id=payload.get("order_id"), errors=dict(payload.get("errors") or {}))
        if status != "accepted":
            raise ValidatorUnavailable(f"{self.function_name} returned an unexpected answer")
        return ValidationResult("accepted", order_id=payload.get("order_id"), duplicate=bool(payload.get("duplicate")))

    def find(self, order_id: str) -> dict[str, Any] | None:
        """The stored order with this id, or None when no order with it is stored."""
        payload = self._invoke({"find_order_id": order_id})
        if payload.get("status") == "found":
            order: dict[str, Any] = payload["order"]
            return order
        if payload.get("status") == "not_found":
            return None
        raise ValidatorUnavailable(f"{self.function_name} could not look the order up: {payload.get('errors')}")
