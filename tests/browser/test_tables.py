"""The lab's tables as Chromium lays them out in a narrow page: a service or an error code is never cut mid-word
("secretsmanag er"), while a long parameter list still wraps within the page; a long call table is folded."""
from __future__ import annotations

import pandas as pd
import pytest

from labkit import display
from labkit.calls import StepCalls

pytestmark = pytest.mark.browser

ROWS = [{"service": "secretsmanager", "operation": "GetSecretValue",
         "parameters": "SecretId=arn:aws:secretsmanager:us-east-1:123456789012:secret:order-db-secret-AbCdEf, "
                       "VersionStage=AWSCURRENT, " + "Filters=[{\"Name\":\"tag:lab\",\"Values\":[\"orders-lab\"]}]" * 3,
         "answer": "AccessDeniedException", "ms": 12, "count": 1},
        {"service": "elasticloadbalancing", "operation": "DescribeLoadBalancers", "parameters": "",
         "answer": "200", "ms": 3, "count": 1}]
LINES = ("(el) => { const range = document.createRange(); range.selectNodeContents(el);"
         " return new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top))).size; }")


def _open(browser, tmp_path, body: str, width: int = 760):
    page = tmp_path / "table.html"
    page.write_text(f"<!doctype html><html><body style='margin: 8px; width: {width}px; font-family: sans-serif'>"
                    f"{body}</body></html>")
    browser.get(page.as_uri())


def _lines_of(browser, text: str) -> int:
    from selenium.webdriver.common.by import By

    cell = next(td for td in browser.find_elements(By.TAG_NAME, "td") if td.get_attribute("textContent") == text)
    return browser.execute_script(f"return ({LINES})(arguments[0]);", cell)


def test_short_words_stay_whole_and_long_parameters_wrap_in_a_narrow_page(browser, tmp_path):
    _open(browser, tmp_path, display.to_html(pd.DataFrame(ROWS)))
    browser.save_screenshot(str(tmp_path / "narrow-table.png"))
    for word in ("secretsmanager", "elasticloadbalancing", "AccessDeniedException", "GetSecretValue"):
        assert _lines_of(browser, word) == 1, word
    table_width = browser.execute_script("return document.querySelector('table').getBoundingClientRect().width;")
    assert table_width <= 760 + 1, "the long parameters wrap instead of widening the table"
    assert _lines_of(browser, ROWS[0]["parameters"]) > 3


def test_a_long_call_table_is_folded_until_opened(browser, tmp_path):
    from selenium.webdriver.common.by import By

    frame = pd.DataFrame([{**ROWS[1], "operation": f"Op{n}", "aws_cli": f"aws elb op{n}"} for n in range(20)])
    calls = StepCalls(1, "VPC > Your VPCs", frame, "\n".join(frame["aws_cli"]))
    _open(browser, tmp_path, calls._repr_html_(), width=900)
    visible = [td.text for td in browser.find_elements(By.TAG_NAME, "td") if td.is_displayed()]
    assert "Op7" in visible and "Op8" not in visible
    browser.find_elements(By.TAG_NAME, "summary")[0].click()
    visible = [td.text for td in browser.find_elements(By.TAG_NAME, "td") if td.is_displayed()]
    assert "Op19" in visible
    browser.save_screenshot(str(tmp_path / "folded-calls.png"))
