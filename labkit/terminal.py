"""Text for a terminal: what ``labkit tasks``, ``labkit check``, ``labkit status`` and ``labkit cloud status`` print.

Every line fits the terminal's width (100 columns when it cannot be told, never under 60): a table wider than
that is shown one row at a time as ``column  value`` lines, long values wrap under themselves, and the local
cloud's status is a short section per service instead of raw JSON (``labkit cloud status --json`` keeps that).
Tables that fit are :func:`labkit.display.to_text`, the notebooks' plain-text form.
"""
from __future__ import annotations

import shutil
import textwrap
from typing import Any

import pandas as pd

from labkit import display

DEFAULT_WIDTH = 100
MIN_WIDTH = 60


def width() -> int:
    """The terminal's width in columns (COLUMNS, else the terminal's own), 100 when neither tells."""
    return max(MIN_WIDTH, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)


def wrap(text: str, columns: int, indent: str = "", first: str | None = None) -> list[str]:
    """``text`` in lines of at most ``columns``: the first starts with ``first`` (default ``indent``), the rest
    with ``indent``; words are kept whole unless one alone is wider than a line (a long ARN or path). A ``first``
    too long to leave room (a function's ARN as a label) gets lines of its own."""
    first = indent if first is None else first
    head: list[str] = []
    if len(first) > columns - 12:
        head = textwrap.wrap(first, width=columns, subsequent_indent=indent, break_long_words=True,
                             break_on_hyphens=False, drop_whitespace=False)
        head = [line.rstrip() for line in head]
        first = indent
    lines = textwrap.wrap(" ".join(str(text).split()), width=columns, initial_indent=first, subsequent_indent=indent,
                          break_long_words=True, break_on_hyphens=False)
    return head + lines or [first.rstrip()]


def frame_text(frame: pd.DataFrame, columns: int | None = None) -> str:
    """A table as text within ``columns``: as the notebooks show it when it fits; else with its widest columns
    wrapped within their cells; else (too many columns for the width) row by row as ``column  value`` lines."""
    columns = columns or width()
    text = display.to_text(frame)
    if max((len(line) for line in text.splitlines()), default=0) <= columns:
        return text
    shown = display.tidy(frame)
    names = [str(c) for c in shown.columns]
    cells = [[display.cell_text(v, n).replace("\n", " ") for n, v in zip(names, row)]
             for row in shown.itertuples(index=False, name=None)]
    widths = _fitted_widths(names, cells, columns - 2 * (len(names) - 1))
    if widths is None:
        return _row_blocks(names, cells, columns)
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths)).rstrip()]
    for row in cells:
        wrapped = [textwrap.wrap(value, w, break_long_words=True) or [""] for value, w in zip(row, widths)]
        for i in range(max(len(parts) for parts in wrapped)):
            lines.append("  ".join((parts[i] if i < len(parts) else "").ljust(w)
                                   for parts, w in zip(wrapped, widths)).rstrip())
    return "\n".join(lines)


WORD_FLOOR = 30  # a column is not made narrower than its longest word, up to this many characters


def _fitted_widths(names: list[str], cells: list[list[str]], budget: int) -> list[int] | None:
    """Column widths summing to at most ``budget``: every column capped at one width, as high as fits, but none
    under its header or its longest word (up to WORD_FLOOR); None when even those floors do not fit."""
    natural = [max([len(n)] + [len(row[i]) for row in cells]) for i, n in enumerate(names)]
    floors = [max(len(n), min(WORD_FLOOR, max((len(w) for row in cells for w in row[i].split()), default=0)))
              for i, n in enumerate(names)]
    if sum(floors) > budget:
        return None

    def capped(cap: int) -> list[int]:
        return [max(floor, min(wide, cap)) for floor, wide in zip(floors, natural)]

    cap = max(natural)
    while cap > 1 and sum(capped(cap)) > budget:
        cap -= 1
    return capped(cap)


def _row_blocks(names: list[str], cells: list[list[str]], columns: int) -> str:
    label = min(max(len(n) for n in names), columns // 3)
    blocks = []
    for number, row in enumerate(cells, 1):
        lines = [f"-- {number} of {len(cells)} --"]
        for name, value in zip(names, row):
            lines += wrap(value, columns, " " * (label + 2), f"{name[:label]:<{label}}  ")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def tasks_text(frame: pd.DataFrame, columns: int | None = None) -> str:
    """The "Your turn" tasks (``tasks.tasks_frame``): one block each, passed or not yet, what the cloud shows and,
    when not yet, the hint."""
    columns = columns or width()
    blocks = []
    for row in frame.itertuples(index=False):
        mark = f"{display.TICK} passed " if row.passed else f"{display.CROSS} not yet"
        lines = wrap(row.task, columns, " " * 15, f"{row.step:>2}  {mark}  ")
        lines += wrap(row.detail, columns, " " * 15)
        if not row.passed and row.hint:
            lines += wrap(row.hint, columns, " " * 15, " " * 9 + "hint: ")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "" or value == [] or value == {}:
        return "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(_scalar(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_scalar(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _entries(info: dict[str, Any], columns: int, indent: str) -> list[str]:
    lines: list[str] = []
    for key, value in info.items():
        key = str(key).replace("_", " ")
        nested = isinstance(value, dict) and value and any(isinstance(v, dict) for v in value.values())
        if nested:  # e.g. the database servers or functions by name: a line each
            lines += wrap("", columns, indent, f"{indent}{key}:")
            for name, item in value.items():
                lines += wrap(_scalar(item), columns, indent + "    ", f"{indent}  {name}: ")
        else:
            lines += wrap(_scalar(value), columns, indent + "    ", f"{indent}{key}: ")
    return lines


def services_text(services: dict[str, Any], columns: int | None = None) -> str:
    """The local cloud's ``/_labkit/health`` services as a short section each (service name, then its state)."""
    columns = columns or width()
    lines = []
    for service, info in services.items():
        lines.append(str(service))
        lines += _entries(info, columns, "  ") if isinstance(info, dict) and info else ["  (nothing to report)"]
    return "\n".join(lines)
