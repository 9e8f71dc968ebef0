"""What labkit prints in a terminal fits it: tables wrap within their cells (or go row by row), the tasks are
blocks, the local cloud's status is sections, not JSON (issue 27: a 100-column terminal)."""
from __future__ import annotations

import pandas as pd
import pytest

from labkit import terminal

ARN = "arn:aws:lambda:us-east-1:123456789012:function:order-validator"


def _fits(text: str, columns: int) -> None:
    assert all(len(line) <= columns for line in text.splitlines()), max(text.splitlines(), key=len)


def test_a_table_that_fits_is_shown_as_the_notebooks_show_it():
    frame = pd.DataFrame([{"check": "vpc exists", "passed": True}])
    assert terminal.frame_text(frame, 100) == "check       passed\nvpc exists  ✓"


@pytest.mark.parametrize("columns", [80, 100])
def test_a_wide_table_wraps_its_widest_columns_and_keeps_short_words_whole(columns):
    frame = pd.DataFrame([{"check": "route 0.0.0.0/0 -> internet gateway", "expected": "igw-0123456789abcdef0",
                           "actual": "10.0.0.0/16->local, 0.0.0.0/0->igw-0123456789abcdef0, " * 3, "passed": False}])
    text = terminal.frame_text(frame, columns)
    _fits(text, columns)
    assert text.splitlines()[0].split() == ["check", "expected", "actual", "passed"]
    assert "igw-0123456789abcdef0" in text.split() and "✗" in text
    narrow = terminal.frame_text(frame, 60)  # its words do not fit 60 columns side by side: row by row
    _fits(narrow, 60)
    assert narrow.startswith("-- 1 of 1 --\ncheck     route 0.0.0.0/0 -> internet gateway")


def test_too_many_columns_for_the_width_go_row_by_row():
    frame = pd.DataFrame([{f"column {n}": f"value-{n}-" + "x" * 25 for n in range(8)}])
    text = terminal.frame_text(frame, 60)
    _fits(text, 60)
    assert text.splitlines()[0] == "-- 1 of 1 --" and "column 7  value-7-" in text


def test_the_tasks_are_blocks_with_the_hint_when_not_yet():
    frame = pd.DataFrame([
        {"step": 3, "task": "Open 443 on ec2-app-sg to your own address only", "passed": False,
         "detail": "443 is open to 8.8.8.8/32, which is not your address", "hint": "ec2.authorize_security_group_"
         "ingress(GroupId=..., IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 443, 'ToPort': 443}])"},
        {"step": 13, "task": "Run the report every 12 hours", "passed": True,
         "detail": "the rule's schedule cron(0 0/12 * * ? *) fires every 12 h", "hint": ""}])
    text = terminal.tasks_text(frame, 60)
    _fits(text, 60)
    lines = text.splitlines()
    assert lines[0].startswith(" 3  ✗ not yet  Open 443") and any(line.startswith("         hint: ") for line in lines)
    assert "13  ✓ passed   Run the report every 12 hours" in text and text.count("hint:") == 1


def test_the_clouds_status_is_a_section_per_service():
    services = {"iam": {"enforcing": True}, "imds": {},
                "rds": {"flavour": "mariadb", "instances": {"orders-lab-db": {"port": 5, "running": True}}},
                "lambda": {"runtime_python": "/x/python", "functions": {ARN: {"idle": 1, "busy": 0}}},
                "network": {"internet_open": [], "not_modelled": {}}}
    text = terminal.services_text(services, 60)
    _fits(text, 60)
    assert "{" not in text and text.splitlines()[:2] == ["iam", "  enforcing: yes"]
    assert "  (nothing to report)" in text and "    orders-lab-db: port 5, running yes" in text
    assert "internet open: none" in text and "runtime python: /x/python" in text
    assert "function:order-validator:idle1,busy0" in "".join(text.split())  # the ARN is wider than 60 columns
