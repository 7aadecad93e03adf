"""The real service (gunicorn and a Celery worker on the embedded defaults) and a headless
Chromium driven by Selenium with the system's browser and driver, never a downloaded one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests import helpers

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ADMIN_EMAIL = "admin@acme.example"


@dataclass
class Server:
    base_url: str
    outbox: Path
    logs: list[Path]

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text()[-chars:]}" for log in self.logs if log.exists()
        )


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """gunicorn serving an account with one admin, and a worker process delivering its mail
    into an outbox folder; both on the embedded SQLite database and filesystem broker."""
    _browser_or_fail()  # before paying for the start-up
    tmp_path = tmp_path_factory.mktemp("service")
    port = helpers.free_port()
    base_url = f"http://127.0.0.1:{port}"
    outbox = tmp_path / "outbox"
    env = helpers.service_env(
        tmp_path / "instance",
        PRIVACY_OUTBOX_PATH=str(outbox),
        PRIVACY_BIND=f"127.0.0.1:{port}",
        PRIVACY_BASE_URL=base_url,
        WEB_CONCURRENCY="1",
    )
    helpers.flask_cli(env, "db", "upgrade")
    helpers.create_account(env, "Acme", ADMIN_EMAIL)
    web_log, worker_log = tmp_path / "gunicorn.log", tmp_path / "worker.log"
    web = [str(helpers.BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"]
    worker = [
        str(helpers.BIN / "celery"),
        "--app",
        "workers.celery_app",
        "worker",
        "--pool",
        "solo",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
    ]
    with helpers.running(web, env, web_log), helpers.running(worker, env, worker_log):
        helpers.wait_http(f"{base_url}/healthz")
        yield Server(base_url, outbox, [web_log, worker_log])


def _browser_or_fail() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: `make test` installs chromium and chromium-driver "
            "(.ci/setup-system)"
        )


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium; its console log (driver.get_log("browser")) keeps every level."""
    _browser_or_fail()
    with pytest.MonkeyPatch.context() as env:
        # Selenium Manager must never fetch a browser or driver: we name both.
        env.setenv("SE_OFFLINE", "true")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--window-size=1280,900",
            f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
        driver.set_page_load_timeout(30)
        try:
            yield driver
        finally:
            driver.quit()
