"""The order form in headless Chromium, against the app deployed on the local cloud's EC2 instance."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def _fill(driver, **values) -> None:
    from selenium.webdriver.common.by import By

    for name, value in values.items():
        field = driver.find_element(By.ID, name)
        field.clear()
        field.send_keys(value)
    _submit(driver)


def _submit(driver) -> None:
    """Send the form and wait for the next page (a click does not wait for the POST's answer to load)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, "submit").click()

    def gone(_driver) -> bool:
        """The form's page was replaced: its element is stale, or (Chromium, mid-load) no longer in the document."""
        try:
            page.is_enabled()
        except WebDriverException:  # StaleElementReferenceException, or "Node ... does not belong to the document"
            return True
        return False

    waiting = WebDriverWait(driver, 60, poll_frequency=0.1)
    waiting.until(gone)
    waiting.until(lambda d: d.execute_script("return document.readyState") == "complete")


def _rows(provisioned, name: str) -> list[tuple]:
    with provisioned.db_connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT product, quantity, amount FROM orders WHERE customer_name = %s", (name,))
        return [(p, q, str(a)) for p, q, a in cur.fetchall()]


def test_valid_order_shows_success_and_is_stored(browser, provisioned, tmp_path):
    from selenium.webdriver.common.by import By

    from labkit import compute

    browser.get(compute.app_url(provisioned.lab))
    assert "Place an order" in browser.page_source
    _fill(browser, customer_name="Browser Ada", product="Slide rule", quantity="3", amount="42.50")
    assert browser.find_element(By.ID, "success").text == "Order placed."
    order_id = browser.find_element(By.ID, "order-id").text
    assert len(order_id) == 36
    assert _rows(provisioned, "Browser Ada") == [("Slide rule", 3, "42.50")]
    from labkit import verify  # step 8's read-back of the student's own order finds it

    form = verify.form_orders(provisioned.lab)
    assert order_id in set(form.orders["order_id"]) and "stored" in repr(form)
    browser.save_screenshot(str(tmp_path / "success.png"))


def test_amount_zero_shows_the_error_and_stores_nothing(browser, provisioned):
    from selenium.webdriver.common.by import By

    from labkit import compute

    browser.get(compute.app_url(provisioned.lab))
    _fill(browser, customer_name="Browser Zero", product="Nothing", quantity="1", amount="0")
    assert "correct the fields" in browser.find_element(By.ID, "invalid").text
    assert browser.find_element(By.ID, "amount-error").text == "amount must be greater than 0"
    assert browser.find_element(By.ID, "customer_name").get_attribute("value") == "Browser Zero"
    assert _rows(provisioned, "Browser Zero") == []


def _placed_as_a_student_would(driver, attempts: int = 3) -> None:
    """Wait for the page after Send; on "The order service did not confirm your order" (the validator's answer did
    not come in time on a loaded machine) send the form again, as the page tells the student: it is the same order,
    never placed twice. Fails with the page's text if no attempt is placed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def answered(d) -> str | None:
        for marker in ("success", "unavailable", "conflict", "invalid"):
            if d.find_elements(By.ID, marker):
                return marker
        return None

    for _ in range(attempts):
        outcome = WebDriverWait(driver, 60, poll_frequency=0.2).until(answered)
        if outcome != "unavailable":
            break
        _submit(driver)
    assert outcome == "success", driver.find_element(By.TAG_NAME, "body").text[:500]
    assert driver.find_element(By.ID, "success").text == "Order placed."


def _styled(driver) -> dict[str, str]:
    """What /static/style.css gives the page, as Chromium computed it (unstyled: white, no rounded card)."""
    return driver.execute_script(
        "const body = getComputedStyle(document.body), card = getComputedStyle(document.querySelector('.card'));"
        "return {background: body.backgroundColor, radius: card.borderRadius,"
        "        sheet: document.styleSheets.length && document.styleSheets[0].cssRules.length};")


def test_every_page_after_the_first_keeps_its_style(browser, provisioned, tmp_path):
    """The form, then the success page, then the form again through the header link: Chromium revalidates the
    no-cache style sheet for each page after the first (If-None-Match / If-Modified-Since); each stays styled."""
    from selenium.webdriver.common.by import By

    from labkit import compute

    styled = {"background": "rgb(244, 246, 251)", "radius": "12px"}
    browser.get(compute.app_url(provisioned.lab))
    first = _styled(browser)
    assert first["sheet"] > 0 and {k: first[k] for k in styled} == styled, first
    _fill(browser, customer_name="Browser Style", product="Stylus", quantity="1", amount="9.90")
    _placed_as_a_student_would(browser)
    second = _styled(browser)
    browser.save_screenshot(str(tmp_path / "second-page.png"))
    assert second["sheet"] > 0 and {k: second[k] for k in styled} == styled, second
    browser.find_element(By.CLASS_NAME, "brand").click()
    assert "Place an order" in browser.page_source
    third = _styled(browser)
    browser.save_screenshot(str(tmp_path / "third-page.png"))
    assert {k: third[k] for k in styled} == styled, third
