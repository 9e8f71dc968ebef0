"""The one display style of labkit's tables (labkit/display.py), and the check and log tables it shows."""
from __future__ import annotations

import html
import re

import pandas as pd
import pytest

from labkit import checks, display
from labkit.functions import report_fields

RULES = pd.DataFrame([{"group": "ec2-app-sg", "port": 5000, "from": "0.0.0.0/0"},
                      {"group": "lambda-sg", "port": None, "from": "(no inbound rules)"}])
LONG = "endpoint group allows 443 from the EC2 group (private DNS covers the instance too) " * 2


def test_plain_text_has_no_index_no_nan_and_integers_as_integers():
    text = display.to_text(RULES)
    assert text.splitlines()[0].split() == ["group", "port", "from"]  # no index column before "group"
    assert "5000" in text and "5000.0" not in text
    assert "NaN" not in text and "<NA>" not in text and "None" not in text
    assert text.splitlines()[1].startswith("ec2-app-sg")  # left-aligned, no index


def test_nothing_is_cut():
    frame = pd.DataFrame([{"check": LONG, "passed": True}])
    assert LONG.strip() in display.to_text(frame)
    assert LONG.strip() in display.to_html(frame)
    assert "..." not in display.to_html(frame)


def test_passed_is_a_coloured_tick_or_cross_and_other_booleans_read_yes_no():
    frame = pd.DataFrame([{"check": "a", "private": True, "passed": True},
                          {"check": "b", "private": False, "passed": False}])
    html = display.to_html(frame)
    assert f'color: {display.GREEN}; font-weight: 600;">{display.TICK}</span>' in html
    assert f'color: {display.RED}; font-weight: 600;">{display.CROSS}</span>' in html
    assert ">yes<" in html and ">no<" in html
    assert "True" not in html and "False" not in html
    assert display.to_text(pd.DataFrame({"allowed": [True, False, None]})).split() == ["allowed", "allowed", "blocked"]


def test_html_has_no_index_cells_is_left_aligned_even_untrusted_and_is_deterministic():
    html = display.to_html(RULES)
    assert "row_heading" not in html and "blank" not in html  # no index cells at all
    assert html.count('style="text-align: left;') == 3 + 6  # headers and cells keep it without the <style> block
    assert html == display.to_html(RULES.copy())
    assert "nan" not in html.lower().replace("nanos", "")


def test_values_are_escaped():
    html = display.to_html(pd.DataFrame({"message": ["<script>alert(1)</script> & more"]}))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_meaningful_index_becomes_columns_and_timestamps_read_in_utc():
    frame = pd.DataFrame({"day": ["2026-11-24"], "orders": [3]}).set_index("day")
    assert display.to_text(frame).split()[:2] == ["day", "orders"]
    stamp = pd.DataFrame({"time": [pd.Timestamp("2026-11-25 07:06:41", tz="UTC")], "amount": [12.5]})
    assert display.to_text(stamp).splitlines()[1].split() == ["2026-11-25", "07:06:41", "UTC", "12.50"]


def test_an_empty_frame_says_so():
    assert display.to_text(pd.DataFrame(columns=["path", "allowed"])).splitlines() == ["path  allowed", "(no rows)"]


def test_install_outside_ipython_is_a_no_op():
    assert display.install() is False


def test_install_registers_both_formatters():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        assert display.install()
        data, _ = shell.display_formatter.format(RULES)
        assert data["text/plain"] == display.to_text(RULES)
        assert data["text/html"] == display.to_html(RULES)
    finally:
        InteractiveShell.clear_instance()


@pytest.mark.parametrize("value,text", [(True, "yes"), (False, "no"), (None, "(none)"), (["a", "b"], "a, b"),
                                        (3306, "3306")])
def test_check_values_read_as_words(value, text):
    assert checks.shown(value) == text


def test_checks_are_phrased_positively():
    table = checks._Table()
    table.add("SSH port 22 closed (commands go through SSM Run Command)", True, True)
    row = table.frame().iloc[0]
    assert (row["expected"], row["actual"], row["passed"]) == ("yes", "yes", True)


def test_report_log_lines_split_into_columns():
    line = ("REPORT RequestId: 3f1c\tDuration: 436.70 ms\tBilled Duration: 437 ms\tMemory Size: 256 MB\t"
            "Max Memory Used: 61 MB\tInit Duration: 822.63 ms")
    assert report_fields(line) == {"request id": "3f1c", "duration (ms)": 436.7, "billed (ms)": 437.0,
                                   "memory (MB)": 256.0, "max memory used (MB)": 61.0, "init (ms)": 822.63}
    shown = display.to_text(pd.DataFrame([report_fields(line)]))
    assert "437" in shown and "437.0" not in shown and "256" in shown
    killed = ("REPORT RequestId: 806a\tDuration: 376.59 ms\tBilled Duration: 377 ms\tMemory Size: 128 MB\t"
              "Max Memory Used: 128 MB\tStatus: error\tError Type: Runtime.OutOfMemory")  # AWS's, out of memory
    assert report_fields(killed)["status"] == "error"
    assert report_fields(killed)["error type"] == "Runtime.OutOfMemory"


@pytest.mark.parametrize("path", ["flask_app/app.py", "lambda_code/order_validator/lambda_function.py",
                                  "lambda_code/daily_report/lambda_function.py"])
def test_the_deployed_code_is_read_from_the_repository_and_highlighted_inline(path):
    shown = display.code(path)
    text = (display.ROOT / path).read_text()
    assert repr(shown) == f"# {path}\n{text}"  # the file itself, never a copy
    page = shown._repr_html_()
    assert '<span style="color:' in page  # inline colours: JupyterLab's sanitizer keeps them
    code = html.unescape(re.sub(r"<[^>]+>", "", page.split("</p>", 1)[1]))
    assert code.strip() == text.strip()  # highlighted, nothing left out


def test_columns_of_short_words_keep_them_whole_in_html():
    """A service or an error code never breaks mid-word ("secretsmanag er"); a column holding an ARN or JSON may
    (tests/browser/test_tables.py lays it out in Chromium)."""
    frame = pd.DataFrame([{"service": "secretsmanager", "answer": "AccessDeniedException",
                           "parameters": "SecretId=arn:aws:secretsmanager:us-east-1:123456789012:secret:x"}])
    html_text = display.to_html(frame)
    whole = set(re.findall(r"td\.col(\d) \{\s*overflow-wrap: break-word;", html_text))
    assert whole == {"0", "1"}, html_text[:1200]
