"""Sign-in rate limits hold across gunicorn worker processes when counters live in Redis."""

from __future__ import annotations

import http.cookiejar
import os
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests import helpers

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def redis_url() -> str:
    url = os.environ.get("PRIVACY_TEST_BROKER_URL", "")
    if not url.startswith("redis://"):
        pytest.skip("needs Redis (PRIVACY_TEST_BROKER_URL=redis://...), as in CI's second pass")
    return url


class Visitor:
    """A browser without JavaScript: cookies kept, redirects not followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(jar), NoRedirect
        )

    def ask_for_link(self, email: str) -> tuple[int, dict]:
        page = self.opener.open(self.base + "/auth/login", timeout=10).read().decode()
        token = CSRF.search(page).group(1)
        body = urllib.parse.urlencode({"csrf_token": token, "email": email}).encode()
        try:
            response = self.opener.open(self.base + "/auth/login", data=body, timeout=10)
        except urllib.error.HTTPError as exc:  # 3xx (not followed) and 4xx land here
            return exc.code, dict(exc.headers)
        return response.status, dict(response.headers)


@pytest.mark.integration
def test_the_per_address_limit_is_shared_by_every_worker_process(tmp_path):
    url = redis_url()
    port = helpers.free_port()
    env = helpers.service_env(
        tmp_path / "instance",
        PRIVACY_BIND=f"127.0.0.1:{port}",
        PRIVACY_RATELIMIT_STORAGE_URL=url,
        PRIVACY_SIGNIN_RATE_LIMIT=f"3 per {10 + port % 50} minutes",  # a window of its own
        WEB_CONCURRENCY="3",
        PRIVACY_WEB_THREADS="1",
    )
    helpers.flask_cli(env, "db", "upgrade")
    args = [str(helpers.BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"]
    with helpers.running(args, env, tmp_path / "gunicorn.log"):
        helpers.wait_http(f"http://127.0.0.1:{port}/healthz")
        base = f"http://127.0.0.1:{port}"
        email = f"limit-{port}@example.org"
        # A new visitor (and connection) each time: the requests spread over the workers.
        answers = [Visitor(base).ask_for_link(email) for _ in range(5)]
    statuses = [status for status, _ in answers]
    assert statuses == [303, 303, 303, 429, 429], statuses
    assert int(answers[3][1]["Retry-After"]) > 0
    workers = (tmp_path / "gunicorn.log").read_text().count("Booting worker")
    assert workers == 3
