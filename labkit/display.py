"""One display style for every table the lab shows: notebooks, the lab report, plain text.

Every ``*_frame`` result is an ordinary DataFrame; this module decides how one *looks*. ``import labkit``
registers it with IPython, so a DataFrame shown in a notebook goes through :func:`to_html` (a pandas Styler)
and :func:`to_text` (its plain-text form, deterministic for nbval and papermill):

* no 0..n index column (a meaningful index, e.g. after ``set_index``, becomes ordinary columns);
* text left-aligned and never cut with "...";
* integers as integers (a port is ``5000``, not ``5000.0``), blanks instead of ``NaN``/``None``;
* ``passed`` as a coloured tick or cross, other yes/no columns as "yes"/"no", ``allowed`` as allowed/blocked.
"""
from __future__ import annotations

import hashlib
import html
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover - types only
    from pandas.io.formats.style import Styler

TICK, CROSS = "✓", "✗"
GREEN, RED = "#067647", "#b42318"
# Yes/no columns whose value is a verdict: shown as a word pair instead of yes/no.
VERDICTS = {"passed": (TICK, CROSS), "allowed": ("allowed", "blocked"), "up": ("up", "down"),
            "done": (TICK, "not yet")}
TABLE_CSS = [
    {"selector": "", "props": "border-collapse: collapse; font-size: 13px; margin: 0.2em 0 0.8em 0;"},
    {"selector": "th", "props": "text-align: left; padding: 4px 10px; border-bottom: 2px solid #c8cfdb;"
                                "background: #f3f5f9; white-space: nowrap;"},
    {"selector": "td", "props": "text-align: left; vertical-align: top; padding: 4px 10px; "
                                "border-bottom: 1px solid #e4e8ef; white-space: pre-wrap; "
                                "overflow-wrap: anywhere; max-width: 60em;"},
]
INLINE = "text-align: left; vertical-align: top;"
# A column whose longest word is this short keeps its words whole ("secretsmanager", "AccessDeniedException"): the
# table makes it at least that wide. Longer words (ARNs, JSON parameters, paths) may still break anywhere, or one
# of them would stretch the table past the page.
WHOLE_WORDS = 32


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _integral(series: pd.Series) -> bool:
    values = series.dropna()
    return pd.api.types.is_float_dtype(series) and not values.empty and bool((values == values.round()).all())


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as it is shown: a meaningful index as columns, integer-valued float columns as integers."""
    shown = frame.copy()
    if not (isinstance(shown.index, pd.RangeIndex) and shown.index.name is None):
        shown = shown.reset_index()
    shown.columns = [" / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in shown.columns]
    for column in shown.columns:
        if _integral(shown[column]):
            shown[column] = shown[column].astype("Int64")
    return shown


def cell_text(value: Any, column: str = "") -> str:
    """One cell as text: blanks for missing values, yes/no (or the column's verdict words), integers as integers."""
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return ", ".join(cell_text(v) for v in items)
    if _is_missing(value):
        return ""
    if isinstance(value, (bool,)) or type(value).__name__ == "bool_":
        yes, no = VERDICTS.get(column, ("yes", "no"))
        return yes if value else no
    if isinstance(value, pd.Timestamp):
        stamp = value.tz_convert("UTC") if value.tzinfo else value
        return stamp.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if value.tzinfo else "")
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:.2f}" if "amount" in column.lower() else str(int(value))
        return f"{value:.2f}" if "amount" in column.lower() else f"{value:.6g}"
    return str(value)


def _cell_html(value: Any, column: str) -> str:
    text = html.escape(cell_text(value, column))
    if column in ("passed", "done") and not _is_missing(value):
        colour = GREEN if value else RED
        return f'<span style="color: {colour}; font-weight: 600;">{text}</span>'
    return text


def style(frame: pd.DataFrame) -> Styler:
    """The frame as a pandas Styler in the lab's style (deterministic: its id is a digest of the content)."""
    shown = tidy(frame)
    digest = hashlib.sha1(to_text(frame).encode()).hexdigest()[:10]
    styler = shown.style.hide(axis="index").set_uuid(f"labkit-{digest}").set_table_styles(TABLE_CSS)
    for column in shown.columns:
        styler = styler.format(lambda v, c=column: _cell_html(v, c), subset=[column])
    whole = {column: [{"selector": "td", "props": "overflow-wrap: break-word;"}]
             for column in shown.columns if _longest_word(shown[column], column) <= WHOLE_WORDS}
    if whole:
        styler = styler.set_table_styles(whole, overwrite=False, axis=0)
    return styler.format_index(html.escape, axis=1)


def _longest_word(values: pd.Series, column: str) -> int:
    """The length of the longest run without a space in a column's cells, as shown."""
    words = (word for value in values for word in cell_text(value, column).split())
    return max((len(word) for word in words), default=0)


def to_html(frame: pd.DataFrame) -> str:
    """The frame as an HTML table (with its own <style>), as notebooks and the lab report show it."""
    if frame.columns.empty:
        return "<p><em>(nothing to show)</em></p>"
    # The same alignment inline too: JupyterLab drops <style> from outputs it does not trust (a notebook executed
    # elsewhere and not yet trusted), and keeps style attributes.
    return (style(frame).to_html().replace('class="data ', f'style="{INLINE}" class="data ')
            .replace('class="col_heading ', f'style="{INLINE}" class="col_heading '))


def to_text(frame: pd.DataFrame) -> str:
    """The frame as plain text: left-aligned columns, no index, nothing cut; ``(no rows)`` under the header."""
    shown = tidy(frame)
    header = [str(c) for c in shown.columns]
    rows = [[cell_text(v, c).replace("\n", " ") for c, v in zip(header, row)]
            for row in shown.itertuples(index=False, name=None)]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    if not rows:
        lines.append("(no rows)")
    return "\n".join(lines)


def ids_frame(ids: dict[str, Any], kind: str = "") -> pd.DataFrame:
    """A (nested) dict of resource ids as a small table: what it is, and its id."""
    rows: list[dict[str, str]] = []
    for key, value in ids.items():
        what = f"{kind} {key}".strip().replace("_id", "").replace("_", " ")
        if isinstance(value, dict):
            rows += ids_frame(value, what).to_dict("records")
        else:
            rows.append({"resource": what, "id": cell_text(value)})
    return pd.DataFrame(rows, columns=["resource", "id"])


ROOT = Path(__file__).resolve().parents[1]
CODE_BOX = ("max-height: 34em; overflow: auto; border: 1px solid #d5dbe5; border-radius: 4px; "
            "padding: 0.4em 0.8em; font-size: 12.5px;")


@dataclass(frozen=True)
class Code:
    """A file of the repository as the lab deploys it, shown highlighted (read from disk, never a copy)."""

    path: str
    text: str

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import get_lexer_for_filename

        # Inline styles (noclasses): they survive JupyterLab's sanitizer, which drops <style> blocks.
        body = highlight(self.text, get_lexer_for_filename(self.path), HtmlFormatter(noclasses=True, nowrap=False))
        lines = len(self.text.splitlines())
        return (f'<p><b><code>{html.escape(self.path)}</code></b> ({lines} lines, as deployed)</p>'
                f'<div style="{CODE_BOX}">{body}</div>')

    def __repr__(self) -> str:
        return f"# {self.path}\n{self.text}"


def code(path: str) -> Code:
    """The repository file ``path`` (e.g. ``flask_app/app.py``), for a notebook to show the code a step deploys."""
    return Code(path, (ROOT / path).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Page:
    """A page of the lab (the app's form) embedded in the notebook, with its address as the plain-text form."""

    url: str
    height: int = 520

    def _repr_html_(self) -> str:
        url = html.escape(self.url, quote=True)
        return (f'<p>The app: <a href="{url}" target="_blank">{html.escape(self.url)}</a></p>'
                f'<iframe src="{url}" width="100%" height="{self.height}" style="border: 1px solid #d5dbe5;"></iframe>')

    def __repr__(self) -> str:
        return f"The app: {self.url}"


def install() -> bool:
    """Show every DataFrame in the running IPython kernel in the lab's style; False outside IPython."""
    ipython_module = sys.modules.get("IPython")
    shell = ipython_module.get_ipython() if ipython_module else None
    if shell is None:
        return False
    formatters = shell.display_formatter.formatters
    formatters["text/html"].for_type(pd.DataFrame, to_html)
    formatters["text/plain"].for_type(pd.DataFrame, lambda frame, printer, cycle: printer.text(to_text(frame)))
    return True
