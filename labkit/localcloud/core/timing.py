"""The time AWS takes: fast by default, realistic on request.

By default the local cloud does at once what AWS does in seconds or minutes, so a lab runs end to end in minutes.
In **realistic mode** it takes AWS's time where a lesson is about it ("AWS is eventually consistent: wait and
retry"), each delay measured on the lab clock (an advance skips it):

========================  ========  ===========================================================================
delay                     seconds   what waits, and AWS's word for it
========================  ========  ===========================================================================
``rds_reboot``            45        RebootDBInstance and the recovery of a crashed engine: the instance reads
                                    ``rebooting`` and refuses connections ("a momentary outage, during which the
                                    DB instance status is set to rebooting"; tens of seconds for a small MySQL)
``rds_create``            60        CreateDBInstance: ``creating`` (AWS: several minutes)
``iam_propagation``       8         an IAM change (a policy attached, put, detached or deleted, a new role or
                                    trust policy) reaches authorization and Lambda's role checks ("Changes that I
                                    make are not always immediately visible": IAM is eventually consistent)
``endpoint_create``       60        a new interface VPC endpoint reads ``pending`` and carries nothing, then
                                    ``available`` (about a minute on AWS)
========================  ========  ===========================================================================

Turned on with ``labkit cloud start --realistic`` (``--delay iam_propagation=5`` to change a figure) or
``LABKIT_REALISTIC=1`` (``LABKIT_DELAYS="iam_propagation=5,rds_reboot=30"``) in the cloud's environment, and at
any time through ``POST /_labkit/timing`` (``labkit cloud timing realistic|fast``; a notebook: ``lab.realistic()``),
which is how notebook 15 turns it on for the case that teaches it. ``GET /_labkit/timing`` shows the setting.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from werkzeug.wrappers import Request

from labkit.localcloud.core.clock import ClockService
from labkit.localcloud.core.services import CloudContext, Route, Service

log = logging.getLogger("labkit.localcloud.timing")
REALISTIC = {"rds_reboot": 45.0, "rds_create": 60.0, "iam_propagation": 8.0, "endpoint_create": 60.0}
POLL = 0.2  # seconds between looks at the lab clock while a delay runs


def parse_delays(text: str) -> dict[str, float]:
    """``"iam_propagation=5,rds_reboot=30"`` -> {name: seconds}; an unknown name or a bad number is an error."""
    delays: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        delays.update(checked_delays({name.strip(): value.strip() if sep else ""}))
    return delays


def checked_delays(given: Mapping[str, Any]) -> dict[str, float]:
    """``given`` as {delay: seconds}, refusing names that are not delays and values that are not seconds >= 0."""
    delays: dict[str, float] = {}
    for name, value in given.items():
        if name not in REALISTIC:
            raise ValueError(f"no delay named {name!r}: the delays are {', '.join(REALISTIC)}")
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"the delay {name} takes seconds, not {value!r}") from None
        if seconds < 0:
            raise ValueError(f"the delay {name} cannot be negative ({seconds})")
        delays[name] = seconds
    return delays


class TimingService(Service):
    """Whether the cloud takes AWS's time, how much, and the waits that take it (on the lab clock)."""

    name = "timing"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.realistic = os.environ.get("LABKIT_REALISTIC", "").lower() in ("1", "true", "yes", "on")
        self.delays = {**REALISTIC, **parse_delays(os.environ.get("LABKIT_DELAYS", ""))}
        self._stopped = threading.Event()
        self._listeners: list[Callable[[bool], None]] = []

    # -- the setting ------------------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Route]]:
        return [("GET", "/_labkit/timing", lambda _r: self.summary()), ("POST", "/_labkit/timing", self._set)]

    def summary(self) -> dict[str, Any]:
        return {"realistic": self.realistic, "delays": dict(self.delays)}

    def _set(self, request: Request) -> dict[str, Any]:
        body = json.loads(request.get_data() or b"{}")
        if not isinstance(body, dict):
            raise ValueError("POST /_labkit/timing takes {\"realistic\": true|false, \"delays\": {name: seconds}}")
        delays = checked_delays(body.get("delays") or {})
        self.set(bool(body.get("realistic", self.realistic)), delays)
        return self.summary()

    def set(self, realistic: bool, delays: Mapping[str, float] | None = None) -> None:
        """Turn realistic mode on or off (what waits now finishes at once when it goes off); kept before the
        answer leaves, so a restart of the cloud keeps the setting (issue 23)."""
        self.delays.update(delays or {})
        changed = realistic != self.realistic
        self.realistic = realistic
        self.ctx.state.changed(self.name)
        self.ctx.state.commit()
        if changed:
            log.info("timing: %s", "realistic" if realistic else "fast")
            for listener in list(self._listeners):
                listener(realistic)

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(realistic)`` whenever the mode changes (IAM forgets its pending changes)."""
        self._listeners.append(listener)

    def delay(self, kind: str) -> float:
        """Seconds of lab time ``kind`` takes now (0 in fast mode)."""
        return self.delays.get(kind, 0.0) if self.realistic else 0.0

    # -- what a restart keeps (issue 23) ------------------------------------------------------------------
    def save_state(self) -> dict[str, Any]:
        return {"realistic": self.realistic, "delays": dict(self.delays)}

    def load_state(self, saved: dict[str, Any] | None, restored: bool) -> None:
        """The setting the lab had (``labkit cloud timing``, a notebook's ``lab.realistic()``), unless the start
        says otherwise (``--realistic``, ``LABKIT_REALISTIC``, ``LABKIT_DELAYS``: they win over the saved one)."""
        if not saved or not restored:
            return
        if "LABKIT_REALISTIC" not in os.environ:
            self.realistic = bool(saved.get("realistic", self.realistic))
        given = saved.get("delays") or {}
        kept = {k: float(v) for k, v in given.items() if k in REALISTIC and isinstance(v, (int, float)) and v >= 0}
        self.delays = {**REALISTIC, **kept, **parse_delays(os.environ.get("LABKIT_DELAYS", ""))}

    # -- waits on the lab clock ----------------------------------------------------------------------------
    def now(self) -> float:
        clock = self.ctx.services.find(ClockService)
        return clock.clock.timestamp() if clock is not None else time.time()

    def wait(self, kind: str, since: float) -> None:
        """Return once ``kind``'s delay has passed since the lab time ``since`` (at once in fast mode, when the
        mode turns fast, or when the cloud stops)."""
        stopped = self._stopped
        while not stopped.is_set() and self.now() < since + self.delay(kind):
            stopped.wait(POLL)

    def later(self, kind: str, action: Callable[[], None], since: float | None = None, name: str = "") -> None:
        """Run ``action`` once ``kind``'s delay has passed since ``since`` (now by default), in a thread; not when
        the cloud stops or is reset meanwhile (a restart resumes what its records still wait for, issue 23)."""
        start = self.now() if since is None else since
        stopped = self._stopped

        def run() -> None:
            self.wait(kind, start)
            if stopped.is_set():
                return
            try:
                action()
            except Exception:
                log.exception("the delayed %s (%s) failed", kind, name)

        threading.Thread(target=run, daemon=True, name=f"later-{kind}-{name}"[:60]).start()

    def stop_all(self) -> None:
        self._stopped.set()

    def after_reset(self) -> None:
        self._stopped.set()  # waits for the records moto forgot end now
        self._stopped = threading.Event()

