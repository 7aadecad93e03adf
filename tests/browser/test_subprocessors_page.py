"""The public sub-processor page after `flask processors seed`, in headless Chromium under the
real CSP: names, locations and the example badge visible, the stylesheet applied."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from tests import helpers
from tests.browser.test_sign_in import csp_violations
from tests.browser.test_sign_in import heading
from tests.browser.test_sign_in import wait_for

pytestmark = pytest.mark.integration


def service_env(server) -> dict[str, str]:
    """The environment the `service` fixture runs gunicorn with (its instance folder sits
    beside its outbox), so the CLI writes to the database the server reads."""
    return helpers.service_env(
        server.outbox.parent / "instance",
        PRIVACY_OUTBOX_PATH=str(server.outbox),
        PRIVACY_BASE_URL=server.base_url,
    )


def test_the_seeded_sub_processors_are_on_the_public_page(browser, service):
    output = helpers.flask_cli(service_env(service), "processors", "seed")
    *lines, summary = [json.loads(line) for line in output.splitlines()]
    assert summary["created"] == 4, output

    browser.get(f"{service.base_url}/subprocessors")
    wait_for(browser, expected_conditions.title_contains("Sub-processors"))
    assert heading(browser) == "Sub-processors", browser.page_source + service.log_tail()
    rows = browser.find_elements(By.CSS_SELECTOR, "table.subprocessors tbody tr")
    assert len(rows) == 4
    text = browser.find_element(By.TAG_NAME, "main").text
    for name in (
        "Amazon Web Services EMEA SARL",
        "Stripe Payments Europe, Limited",
        "Google Ireland Limited",
        "Mailjet SAS",
    ):
        assert name in text
    assert "Frankfurt, eu-central-1" in text and "North Virginia, us-east-1" in text
    assert "Germany (DE): Within the EU/EEA" in text
    assert "United States (US): Adequacy decision" in text and "Ireland (IE)" in text

    badge = browser.find_element(By.CSS_SELECTOR, "tbody .badge.example")
    assert badge.is_displayed() and badge.text == "example data"
    # Styled by app.css (no inline styles under this CSP): the badge's own background.
    assert badge.value_of_css_property("background-color") == "rgba(255, 244, 214, 1)"
    links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.TAG_NAME, "a")}
    assert links["Atom feed"] == f"{service.base_url}/subprocessors/feed"
    assert links["JSON"] == f"{service.base_url}/api/v1/public/subprocessors"
    assert csp_violations(browser) == []

    again = helpers.flask_cli(service_env(service), "processors", "seed")
    assert json.loads(again.splitlines()[-1])["created"] == 0
