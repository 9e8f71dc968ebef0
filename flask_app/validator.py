"""The Flask app's one dependency: the order-validator Lambda, behind a small typed client."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)


class ValidatorUnavailable(Exception):
    """The validator failed, timed out or could not be reached. The message is for logs, not for users."""


@dataclass(frozen=True)
class ValidationResult:
    status: str  # "accepted" or "invalid"
    order_id: str | None = None
    duplicate: bool = False
    errors: dict[str, str] = field(default_factory=dict)


class ValidatorClient:
    def __init__(self, function_name: str, timeout: float = 30.0, client: Any = None) -> None:
        self.function_name = function_name
        self._client = client or boto3.client("lambda", config=Config(
            read_timeout=timeout, connect_timeout=5, retries={"total_max_attempts": 2, "mode": "standard"}))

    def submit(self, order: dict[str, Any]) -> ValidationResult:
        try:
            response = self._client.invoke(FunctionName=self.function_name, Payload=json.dumps(order).encode())
            payload = json.loads(response["Payload"].read() or b"null")
        except (BotoCoreError, ClientError, ValueError) as exc:
            raise ValidatorUnavailable(f"invoking {self.function_name} failed: {exc}") from exc
        if response.get("FunctionError"):
            message = payload.get("errorMessage", "") if isinstance(payload, dict) else ""
            raise ValidatorUnavailable(f"{self.function_name} failed: {message[:300]}")
        if not isinstance(payload, dict) or payload.get("status") not in ("accepted", "invalid"):
            raise ValidatorUnavailable(f"{self.function_name} returned an unexpected answer")
        if payload["status"] == "invalid":
            return ValidationResult("invalid", errors=dict(payload.get("errors") or {}))
        return ValidationResult("accepted", order_id=payload.get("order_id"), duplicate=bool(payload.get("duplicate")))
