"""The AWS calls a step makes, as they happen: recorded from botocore's own event hooks, shown as a table.

Every client of a :class:`~labkit.session.Lab` comes from one boto3 session; :class:`CallRecorder` listens
on that session's events (``provide-client-params`` for what was asked, ``after-call`` for the answer,
``after-call-error`` when no answer came), so the table shows exactly the requests that were sent -- each
waiter poll and each page included -- on either target. Nothing is listed again afterwards.

Calls are grouped by notebook cell: in Jupyter each cell that runs starts a new group (IPython's
``pre_run_cell`` event), so ``calls_frame(lab)`` in the cell after a step shows what that step asked AWS.
Outside Jupyter :func:`next_cell` starts a group. Secrets never reach the record (:mod:`labkit.redact`).
"""
from __future__ import annotations

import html
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkit import display
from labkit.cli_render import cli_command, short_parameters
from labkit.names import console_path
from labkit.redact import redact

if TYPE_CHECKING:  # pragma: no cover - types only
    import pandas as pd

    from labkit.session import Lab

LIMIT = 5000  # calls kept per lab (the oldest are dropped first)
_cells = itertools.count(1)
_cell = 0
_lock = threading.Lock()
_hooked = False


@dataclass
class Call:
    """One API call: what was asked (redacted), the answer's HTTP status or error code, and how long it took."""

    number: int
    cell: int
    service: str
    operation: str
    params: dict[str, Any]
    started: float
    model: Any = field(default=None, repr=False)
    status: int | None = None
    error: str | None = None
    seconds: float | None = None
    retries: int = 0
    kept: bool = field(default=False, repr=False)

    @property
    def answer(self) -> str:
        if self.error:
            return self.error
        return str(self.status) if self.status is not None else "no answer"

    @property
    def cli(self) -> str:
        return cli_command(self.service, self.operation, self.params, self.model)


def next_cell() -> int:
    """Start a new group of calls (Jupyter does this at every cell); returns its number."""
    global _cell
    with _lock:
        _cell = next(_cells)
        return _cell


def _hook_ipython() -> None:
    global _hooked
    if _hooked:
        return
    _hooked = True
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks only
        return
    shell = get_ipython()
    if shell is not None:
        shell.events.register("pre_run_cell", lambda *_args: next_cell())


class CallRecorder:
    """The calls of one lab, newest last, at most ``limit`` of them."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.calls: deque[Call] = deque(maxlen=limit)
        self._numbers = itertools.count(1)
        _hook_ipython()

    def attach(self, events: Any) -> None:
        """Listen on a boto3/botocore session's event system (before any client is made from it)."""
        events.register("provide-client-params", self._asked)
        events.register("before-call", self._sending)
        events.register("after-call", self._answered)
        events.register("after-call-error", self._failed)

    def _asked(self, params: dict, model: Any, context: dict, **_: Any) -> None:
        service = model.service_model.service_name
        call = Call(next(self._numbers), _cell, service, model.name, _visible(params), time.monotonic(), model)
        context["labkit_call"] = call

    def _sending(self, context: dict, **_: Any) -> None:
        """The request leaves now (a call refused before it is sent, e.g. unconfirmed on AWS, is not one)."""
        call = context.get("labkit_call")
        if call is not None:
            call.started = time.monotonic()
            self._keep(call)

    def _keep(self, call: Call) -> None:
        if not call.kept:
            call.kept = True
            self.calls.append(call)

    def _answered(self, http_response: Any, parsed: dict, context: dict, **_: Any) -> None:
        call = context.get("labkit_call")
        if call is None:
            return
        self._keep(call)  # a handler answering before-call itself (botocore's Stubber) skips ours
        call.seconds = time.monotonic() - call.started
        call.status = getattr(http_response, "status_code", None)
        metadata = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
        call.retries = metadata.get("RetryAttempts", 0)
        if call.status is None or call.status >= 300:
            call.error = (parsed.get("Error") or {}).get("Code") if isinstance(parsed, dict) else None

    def _failed(self, exception: Exception, context: dict, **_: Any) -> None:
        call = context.get("labkit_call")
        if call is not None:
            self._keep(call)
            call.seconds = time.monotonic() - call.started
            call.error = type(exception).__name__

    def of_cell(self, cell: int | None = None) -> list[Call]:
        """The calls of ``cell``; by default of the latest earlier cell that made any (so the cell after a
        step shows the step's calls, and shows them again when run twice)."""
        calls = list(self.calls)
        if cell is None:
            earlier = [c.cell for c in calls if c.cell < _cell] or [c.cell for c in calls]
            if not earlier:
                return []
            cell = max(earlier)
        return [c for c in calls if c.cell == cell]


def _visible(params: dict) -> dict:
    """The parameters as recorded: a short UTF-8 payload stays readable, secrets and bytes do not."""
    shown = {}
    for name, value in params.items():
        if name == "Payload" and isinstance(value, (bytes, bytearray)) and len(value) <= 2000:
            try:
                value = bytes(value).decode()
            except UnicodeDecodeError:
                pass
        shown[name] = value
    return redact(shown)


def calls_frame(lab: Lab, cell: int | None = None, repeats: bool = False) -> pd.DataFrame:
    """The API calls of the last cell that made any (or of ``cell``), with the AWS CLI command for each.

    Consecutive identical requests (a waiter polling, a retry loop) are one row with their ``count``, unless
    ``repeats`` is true. Columns: service, operation, parameters (the key ones, no secret), answer (the HTTP
    status, or the error code), ms (the slowest of the row), count, aws_cli.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for call in lab.calls.of_cell(cell):
        parameters = short_parameters(call.params)
        previous = rows[-1] if rows and not repeats else None
        if previous and (previous["service"], previous["operation"], previous["parameters"], previous["answer"]) == (
                call.service, call.operation, parameters, call.answer):
            previous["count"] += 1
            previous["ms"] = max(previous["ms"], _ms(call))
            continue
        rows.append({"service": call.service, "operation": call.operation, "parameters": parameters,
                     "answer": call.answer, "ms": _ms(call), "count": 1, "aws_cli": call.cli})
    columns = ["service", "operation", "parameters", "answer", "ms", "count", "aws_cli"]
    return pd.DataFrame(rows, columns=columns)


def _ms(call: Call) -> int:
    return round((call.seconds or 0.0) * 1000)


def cli_script(lab: Lab, cell: int | None = None) -> str:
    """The AWS CLI commands of the last cell's calls (or of ``cell``), one a line, repeats once."""
    lines: list[str] = []
    for call in lab.calls.of_cell(cell):
        if not lines or lines[-1] != call.cli:
            lines.append(call.cli)
    return "\n".join(lines)


def step_calls(lab: Lab, step: int, cell: int | None = None) -> Any:
    """What the cell of ``step`` asked AWS: where the step is in the console, the calls, the CLI commands.

    Returns a displayable object (a Markdown block and the table) for a notebook cell.
    """
    return StepCalls(step, console_path(step, lab.region), calls_frame(lab, cell), cli_script(lab, cell))


FOLD_AFTER = 8  # rows of a step's call table (and lines of its CLI commands) shown before the rest is folded


@dataclass
class StepCalls:
    """A step's calls for display: the console path, the table and the CLI commands. In a notebook the first
    ``FOLD_AFTER`` rows and commands show; the rest sits in a folded ``<details>`` that a click opens."""

    step: int
    console: str
    frame: Any
    cli: str

    def _repr_html_(self) -> str:
        count = int(self.frame["count"].sum()) if len(self.frame) else 0
        shown = self.frame.drop(columns=["aws_cli"])
        if not len(shown):
            table = "<p>(no calls)</p>"
        elif len(shown) <= FOLD_AFTER:
            table = display.to_html(shown)
        else:
            rest = shown.iloc[FOLD_AFTER:]
            table = (display.to_html(shown.iloc[:FOLD_AFTER])
                     + _folded(f"the other {len(rest)} rows ({int(rest['count'].sum())} calls)",
                               display.to_html(rest.reset_index(drop=True))))
        lines = self.cli.splitlines()
        commands = f"<pre>{html.escape(chr(10).join(lines[:FOLD_AFTER]))}</pre>"
        if len(lines) > FOLD_AFTER:
            commands += _folded(f"the other {len(lines) - FOLD_AFTER} commands",
                                f"<pre>{html.escape(chr(10).join(lines[FOLD_AFTER:]))}</pre>")
        return (f"<p><b>In the console (on AWS):</b> {html.escape(self.console)}</p>"
                f"<p><b>{count} API calls</b>, recorded as they were sent:</p>{table}"
                f"<p><b>The same with the AWS CLI:</b></p>{commands}")

    def __repr__(self) -> str:
        return (f"In the console (on AWS): {self.console}\n{display.to_text(self.frame.drop(columns=['aws_cli']))}"
                f"\n\nThe same with the AWS CLI:\n{self.cli}")


def _folded(summary: str, body: str) -> str:
    return (f'<details style="margin: 0 0 0.8em 0;"><summary style="cursor: pointer;">{html.escape(summary)}'
            f"</summary>{body}</details>")
