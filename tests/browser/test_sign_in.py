"""Signing in by e-mailed link, and the API docs, in a real browser under the real CSP."""

from __future__ import annotations

import email
import time
from email import policy

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser.conftest import ADMIN_EMAIL

pytestmark = pytest.mark.integration


def csp_violations(driver) -> list[dict]:
    """Console entries about the Content-Security-Policy since the last call (reading clears)."""
    return [
        entry
        for entry in driver.get_log("browser")
        if entry.get("source") == "security"
        or "content security policy" in entry["message"].lower()
    ]


def wait_for(driver, condition, timeout: float = 15):
    return WebDriverWait(driver, timeout).until(condition)


def heading(driver) -> str:
    return driver.find_element(By.TAG_NAME, "h1").text


def newest_sign_in_link(server, timeout: float = 60) -> str:
    """The /auth/link/ line of the newest mail in the outbox, once the worker wrote it."""
    deadline = time.monotonic() + timeout
    while not (server.outbox.exists() and list(server.outbox.glob("*.eml"))):
        assert time.monotonic() < deadline, "no mail in the outbox\n" + server.log_tail()
        time.sleep(0.2)
    newest = max(server.outbox.glob("*.eml"), key=lambda path: path.name)
    message = email.message_from_bytes(newest.read_bytes(), policy=policy.default)
    assert message["To"] == ADMIN_EMAIL
    text = message.get_body(preferencelist=("plain",)).get_content()
    links = [line.strip() for line in text.splitlines() if "/auth/link/" in line]
    assert len(links) == 1, text
    assert links[0].startswith(server.base_url + "/auth/link/"), links
    return links[0]


def test_admin_signs_in_by_emailed_link_sees_members_and_signs_out(browser, service):
    browser.get(f"{service.base_url}/members")
    wait_for(browser, expected_conditions.url_contains("/auth/login"))
    assert heading(browser) == "Sign in"
    assert csp_violations(browser) == []

    browser.find_element(By.NAME, "email").send_keys(ADMIN_EMAIL)
    browser.find_element(By.CSS_SELECTOR, "form[action='/auth/login'] button").click()
    wait_for(browser, expected_conditions.url_contains("/auth/check-email"))
    assert heading(browser) == "Check your e-mail"
    assert csp_violations(browser) == []

    browser.get(newest_sign_in_link(service))
    assert heading(browser) == "Sign in to Acme", browser.page_source
    assert csp_violations(browser) == []

    browser.find_element(By.XPATH, "//main//button[normalize-space()='Continue']").click()
    wait_for(browser, expected_conditions.url_to_be(f"{service.base_url}/members"))
    assert heading(browser) == "Members", browser.page_source + service.log_tail()
    cells = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "main table td")]
    assert ADMIN_EMAIL in cells
    assert csp_violations(browser) == []

    browser.find_element(By.XPATH, "//header//button[normalize-space()='Sign out']").click()
    wait_for(browser, expected_conditions.url_contains("/auth/login"))
    browser.get(f"{service.base_url}/members")
    wait_for(browser, expected_conditions.url_contains("/auth/login"))
    assert heading(browser) == "Sign in"
    assert csp_violations(browser) == []


def test_api_docs_render_swagger_ui_under_the_csp(browser, service):
    browser.get(f"{service.base_url}/api/docs")
    title = wait_for(
        browser,
        expected_conditions.visibility_of_element_located(
            (By.CSS_SELECTOR, "#swagger-ui-container .swagger-ui .info .title")
        ),
    )
    assert "Privacy service API" in title.text
    # An operation from the spec rendered too, so the spec was fetched under connect-src.
    wait_for(
        browser,
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock")),
    )
    assert csp_violations(browser) == []
