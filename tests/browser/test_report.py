"""The lab report (labkit report): one self-contained page that renders in headless Chromium, holds every step,
loads nothing from elsewhere and carries no secret."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from labkit import steps
from labkit.localcloud import control

pytestmark = pytest.mark.browser


class _Links(HTMLParser):
    """Every address the page would load or link to (src, href, srcset, CSS url())."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.addresses += [value or "" for name, value in attrs if name in ("src", "href", "srcset", "action")]


@pytest.fixture(scope="module")
def report_page(provisioned, tmp_path_factory):
    from labkit.cli import main

    path = tmp_path_factory.mktemp("report") / "report.html"
    lab = provisioned.lab
    with pytest.MonkeyPatch.context() as env:  # the lab's cloud, as `labkit report` finds it from a shell
        env.setenv("LABKIT_HOME", str(provisioned.home))
        env.setenv("LABKIT_CLOUD_PORT", str(lab.config.cloud_port))
        env.setenv("LABKIT_APP_PORT", str(lab.config.app_port))
        env.delenv("ORDERS_CLASS_URL", raising=False)  # away from a Hub: the report is not sealed
        assert main(["report", "--lab", lab.name, "--output", str(path), "--student", "Ada Lovelace"]) == 0
    return path


def test_the_report_renders_with_every_step_and_nothing_external(browser, report_page, provisioned):
    from selenium.webdriver.common.by import By

    browser.get(report_page.as_uri())
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Orders Lab report: Ada Lovelace ({provisioned.lab.name})"
    for number, step in steps.STEPS.items():
        heading = browser.find_element(By.ID, f"step-{number}")
        assert heading.text == f"Step {number}: {step.title}"
        assert heading.is_displayed()
    sections = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert sections == ["Architecture (as built now)", "Every step's checks", "Network paths (reachability)",
                        "Your turn", "Orders and the daily report", "What it costs on AWS per hour", "Record"]
    record = browser.find_element(By.ID, "record").find_element(By.XPATH, "following-sibling::p").text
    assert record.startswith("Not sealed"), record  # written away from a Hub: nobody can verify it
    assert "Not available" not in browser.page_source
    pictures = browser.find_elements(By.TAG_NAME, "img")
    assert pictures and all(browser.execute_script(  # the diagram (and the chart once a day was reported)
        "return arguments[0].complete && arguments[0].naturalWidth > 0", img) for img in pictures)
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [name for name in loaded if not name.startswith("data:")] == []
    page = report_page.read_text()
    parser = _Links()
    parser.feed(page)
    assert parser.addresses and all(a.startswith(("data:", "#")) for a in parser.addresses), parser.addresses
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page) and "<script" not in page
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)  # the pictures' bytes are no text
    assert "NaN" not in text and "5000.0" not in text


def test_the_report_carries_no_secret(provisioned, report_page):
    page = report_page.read_text()
    secret = json.loads(provisioned.lab.client("secretsmanager").get_secret_value(
        SecretId="order-db-secret")["SecretString"])
    keys = control.admin_credentials(provisioned.home)
    for value in (secret["password"], keys["aws_secret_access_key"]):
        assert value and value not in page
