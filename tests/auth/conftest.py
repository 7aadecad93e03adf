"""Browsers (test clients with their own cookies), a real SMTP server, and reading links."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller
from flask import g

from tests.helpers import free_port

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https?://\S+/auth/link/([A-Za-z0-9_-]+)")


class Browser:
    """One browser: its own cookie jar, CSRF tokens taken from the pages it loads.

    The tests run inside one app context, so `g` would outlive each request (Flask-WTF keeps
    the CSRF token there); every request of a browser starts with an empty `g`, as it would
    in a server.
    """

    def __init__(self, app) -> None:
        self.client = _FreshG(app.test_client())

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def csrf(self, page: str = "/auth/login") -> str:
        response = self.client.get(page)
        match = CSRF.search(response.get_data(as_text=True))
        assert match, (page, response.status_code)
        return match.group(1)

    def post(self, path: str, data: dict | None = None, *, page: str = "/auth/login", **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf(page))
        return self.client.post(path, data=data, **kwargs)

    def request_link(self, email: str):
        return self.post("/auth/login", {"email": email})

    def use_link(self, secret: str):
        shown = self.client.get(f"/auth/link/{secret}")
        assert shown.status_code == 200, shown.get_data(as_text=True)
        token = CSRF.search(shown.get_data(as_text=True)).group(1)
        return self.client.post("/auth/link", data={"csrf_token": token, "token": secret})


class _FreshG:
    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name not in ("get", "post", "open"):
            return attribute

        def call(*args, **kwargs):
            for key in list(g):
                g.pop(key)
            return attribute(*args, **kwargs)

        return call


@pytest.fixture
def browser(app):
    return Browser(app)


@pytest.fixture
def new_browser(app):
    return lambda: Browser(app)


def messages(outbox):
    """The messages in the outbox (tests.conftest.Outbox), once the queued mail is sent."""
    return outbox.messages()


def links_in(message) -> list[str]:
    return LINK.findall(message.get_body(("plain",)).get_content())


class Mailbox:
    """aiosmtpd on loopback, keeping what it is sent (reading it runs the queued mail)."""

    def __init__(self, queue) -> None:
        self.envelopes = []
        self.queue = queue

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        self.queue.run("mail.send_queued")
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(e.content) for e in self.envelopes]


@pytest.fixture
def smtp(app, queue, monkeypatch):
    mailbox = Mailbox(queue)
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setitem(app.config, "SMTP_URL", f"smtp://127.0.0.1:{port}")
    yield mailbox
    controller.stop()
