"""Notebook 15's lesson "AWS is eventually consistent: wait and retry", shown in case 6.

An IAM change (a policy put on a role) reaches the services that authorize with it seconds later: "Changes that I
make are not always immediately visible" (IAM User Guide, troubleshooting). A call made right after the change can
still be refused; the same call a few seconds later succeeds. Code that changes permissions and then uses them
retries with a wait, as :func:`retry_until_works` does.

On ``local`` the lab turns the cloud's realistic mode on for that case (:mod:`labkit.localcloud.core.timing`,
delay ``iam_propagation``) with :func:`take_aws_time` and back to what it was with :func:`restore_timing`; on
``aws`` nothing is switched: AWS takes its own time. The retry is the same call on both targets.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from labkit import display, troubleshoot
from labkit.names import probe_name
from labkit.session import Lab

__all__ = ["Retries", "TimingSwitch", "restore_timing", "retry_until_works", "take_aws_time"]

RETRY_FOR = 60.0  # seconds: AWS documents no bound; in practice an IAM change is visible within seconds
RETRY_EVERY = 2.0  # seconds between attempts


def _mode(setting: dict[str, Any]) -> str:
    if setting.get("note"):
        return str(setting["note"])
    if setting.get("realistic"):
        return (f"realistic: an IAM change reaches Lambda {setting.get('delays', {}).get('iam_propagation', 0):g} s "
                "later, as on AWS")
    return "fast: every change takes effect at once"


@dataclass(frozen=True)
class TimingSwitch:
    """What :func:`take_aws_time` did: the cloud's timing before and now."""

    before: dict[str, Any]
    now: dict[str, Any]

    @property
    def switched(self) -> bool:
        return bool(self.before.get("realistic")) != bool(self.now.get("realistic"))

    def __str__(self) -> str:
        if not self.switched:
            return f"Timing unchanged: {_mode(self.now)}"
        return f"Timing now {_mode(self.now)} (before: {_mode(self.before)})"

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        return f"**{str(self).split(':', 1)[0]}:** {str(self).split(':', 1)[1].strip()}"


def take_aws_time(lab: Lab) -> TimingSwitch:
    """Let the cloud take AWS's time (on ``local``: realistic mode on; on ``aws``: nothing to switch); keep what
    is returned for :func:`restore_timing`."""
    before = lab.target.timing()
    return TimingSwitch(before, lab.target.realistic(True))


def restore_timing(lab: Lab, switch: TimingSwitch) -> TimingSwitch:
    """Put the cloud's timing back to what it was before :func:`take_aws_time` (nothing on ``aws``)."""
    current = lab.target.timing()
    if bool(current.get("realistic")) == bool(switch.before.get("realistic")):
        return TimingSwitch(current, current)
    return TimingSwitch(current, lab.target.realistic(bool(switch.before.get("realistic"))))


@dataclass(frozen=True)
class Retries:
    """The attempts of :func:`retry_until_works`: one row each, with the time since the first one started (a
    message the attempt before gave too shows as "(the same)")."""

    function: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def worked(self) -> bool:
        return bool(self.rows) and self.rows[-1]["answer"] == "ok"

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["attempt", "at (s)", "took (s)", "answer", "message"])

    def summary(self) -> str:
        if not self.rows:
            return f"{self.function} was not tried"
        last = self.rows[-1]
        if self.worked and len(self.rows) == 1:
            return f"{self.function} worked at the first attempt: the change had already reached it"
        if self.worked:
            return (f"{self.function} was refused {len(self.rows) - 1} time(s) right after the change, and worked "
                    f"{last['at (s)']:.1f} s after the first attempt: the change had reached it by then")
        return f"{self.function} still failed {last['at (s)']:.1f} s after the first attempt"

    def _repr_html_(self) -> str:
        return f"<p><b>{self.summary()}</b></p>" + display.to_html(self.frame())

    def __repr__(self) -> str:
        return self.summary() + "\n" + display.to_text(self.frame())


def _answer(attempt: troubleshoot.Attempt) -> str:
    if attempt.ok:
        return "ok"
    if "AccessDenied" in attempt.answer:
        return "AccessDeniedException"
    return attempt.error_type or attempt.function_error or "error"


def retry_until_works(lab: Lab, case: str = "no-secret-access", within: float = RETRY_FOR,
                      every: float = RETRY_EVERY) -> Retries:
    """Try the probe of ``case`` now, and again every ``every`` seconds while it is refused, until it works or
    ``within`` seconds have passed: each attempt with when it started (since the first) and what came back."""
    function = probe_name(lab, case)
    retries = Retries(function)
    started = time.monotonic()
    while True:
        at = time.monotonic() - started
        attempt = troubleshoot.try_probe(lab, function)
        message = "" if attempt.ok else attempt.answer.split(" operation: ", 1)[-1][:240]
        if retries.rows and message and message == retries.rows[-1]["_message"]:
            shown = "(the same)"
        else:
            shown = message
        retries.rows.append({"attempt": len(retries.rows) + 1, "at (s)": round(at, 1),
                             "took (s)": round(attempt.seconds, 2), "answer": _answer(attempt),
                             "message": shown, "_message": message})
        if attempt.ok or time.monotonic() - started + every > within:
            return retries
        time.sleep(every)
