"""Is each running part of the lab up? Probes that name what is unreachable and how to fix it, never raise.

Used by ``labkit status`` and the checks: a part that is down is a row saying so, not a traceback.
"""
from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from labkit import compute
from labkit.errors import LabkitError
from labkit.functions import invoke
from labkit.lookups import describe_db_instance
from labkit.names import VALIDATOR_FUNCTION
from labkit.session import Lab

COLUMNS = ["part", "state", "detail", "how to fix"]
APP_FIX = ("the app's service is down or still starting: wait a few seconds (systemd restarts it), then look at "
           "`systemctl status orders-app` and `journalctl -u orders-app` on the instance "
           "(compute.run_on_instance), or re-run step 8")


@dataclass(frozen=True)
class Probe:
    """The answer of one probe: an HTTP status, or None and why there was none."""

    status: int | None
    reason: str = ""

    @property
    def up(self) -> bool:
        return self.status is not None


def http_probe(url: str, timeout: float = 10) -> Probe:
    """GET ``url``: its status (4xx/5xx included), or None and the reason it could not be reached."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return Probe(response.status)
    except urllib.error.HTTPError as exc:
        return Probe(exc.code)
    except urllib.error.URLError as exc:
        return Probe(None, f"{url} unreachable: {getattr(exc.reason, 'strerror', None) or exc.reason}")
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        return Probe(None, f"{url} unreachable: {exc or type(exc).__name__}")


def _row(part: str, up: bool, detail: str, fix: str) -> dict:
    return {"part": part, "state": "up" if up else "down", "detail": detail, "how to fix": "" if up else fix}


def cloud_row(lab: Lab) -> dict:
    try:
        lab.client("sts").get_caller_identity()
        return _row("AWS API", True, lab.target.endpoint_url or f"AWS {lab.region}", "")
    except (BotoCoreError, ClientError) as exc:
        return _row("AWS API", False, str(exc)[:200], lab.target.unreachable_fix)


def database_row(lab: Lab) -> dict:
    try:
        db = describe_db_instance(lab)
    except (BotoCoreError, ClientError) as exc:
        return _row("database", False, str(exc)[:200], "see the AWS API row")
    if db is None:
        return _row("database", False, "no DB instance", "run step 4")
    status = db.get("DBInstanceStatus")
    return _row("database", status == "available", f"{db['DBInstanceIdentifier']} {status}",
                "RDS restarts a failed engine by itself; read what happened with `aws rds describe-events "
                "--source-type db-instance` and wait for `available` (or start a stopped instance)")


def function_row(lab: Lab) -> dict:
    """The validator answers a lookup: the function, its network path and the database all work."""
    try:
        result = invoke(lab, VALIDATOR_FUNCTION, {"find_order_id": "00000000-0000-4000-8000-000000000000"},
                        read_only=True)
    except (BotoCoreError, ClientError, LabkitError) as exc:
        return _row("order-validator -> database", False, str(exc)[:200], "run step 10, or see the rows above")
    answer = result.payload.get("status") if isinstance(result.payload, dict) else None
    if result.function_error or answer not in ("found", "not_found"):
        message = result.payload.get("errorMessage", "") if isinstance(result.payload, dict) else str(result.payload)
        return _row("order-validator -> database", False, f"{result.function_error}: {message}"[:300],
                    "if the database is down, RDS brings it back; otherwise read the function's log "
                    "(functions.logs_frame) and check its security group and secret (steps 3, 9)")
    return _row("order-validator -> database", True, "lookup answered", "")


def app_row(lab: Lab) -> dict:
    try:
        url = compute.app_url(lab)
    except (LabkitError, BotoCoreError, ClientError) as exc:
        return _row("order app", False, str(exc).splitlines()[0][:200], "run steps 5 and 8")
    probe = http_probe(url + "healthz")
    if probe.status == 200:
        return _row("order app", True, f"{url} answers", "")
    return _row("order app", False, probe.reason or f"{url}healthz answered {probe.status}", APP_FIX)


def health_frame(lab: Lab) -> pd.DataFrame:
    """One row per running part: AWS API, database, function path, app; each up or down, with the fix."""
    rows = [cloud_row(lab)]
    if rows[0]["state"] == "up":
        rows += [database_row(lab), function_row(lab), app_row(lab)]
    return pd.DataFrame(rows, columns=COLUMNS)
