"""Customers' webhooks: configuration through the API and the page (the secret shown once,
stored encrypted), and signed deliveries of change notices to a real HTTP receiver on
loopback, with retries, a final failure state, and production's refusal of private hosts."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest
from sqlalchemy import select

from privacy import outbound
from privacy.audit.models import AuditEvent
from privacy.extensions import db
from privacy.paths import ROOT
from privacy.processors import services
from privacy.processors import webhooks
from privacy.processors.models import Notice
from privacy.processors.models import Webhook
from tests import helpers
from tests.processors import test_register as register_fixtures
from tests.processors.test_customer import PageBrowser
from tests.processors.test_customer import activate_us
from tests.processors.test_customer import backdate
from tests.processors.test_customer import text
from tests.queue import Job

# The register's isolated storage, as a fixture of this module.
register = register_fixtures.register

ANSWER_SECRET = "receiver-says-7f3a"


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    received: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A customer's endpoint on loopback: records every POST, answers from `script` (one
    status per POST), then `default`."""

    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    default: int = 200

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver():
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                state.hits.append(Hit(self.path, dict(self.headers.items()), body, time.time()))
                code = state.script.pop(0) if state.script else state.default
            payload = ANSWER_SECRET.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def delivered(queue) -> list:
    """The worker sends the queued webhook deliveries, retries included (whatever their
    countdown)."""
    return queue.run("processors.deliver_webhook")


def put_webhook(client, tenant, url: str, **extra):
    return client.put(
        "/api/v1/subprocessors/webhook", json={"url": url, **extra}, headers=tenant.headers
    )


@pytest.fixture
def hooked(client, tenant, register, receiver):
    """The tenant's webhook points at the receiver; returns its secret."""
    backdate(tenant)
    response = put_webhook(client, tenant, receiver.url())
    assert response.status_code == 201, response.json
    return response.json["secret"]


def notice_rows() -> list[Notice]:
    # Tasks commit in their own session: end ours (a read snapshot, with WAL) to see them.
    db.session.commit()
    return list(db.session.scalars(select(Notice).order_by(Notice.id)))


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Computed here independently of the service, as a customer would."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


# -- configuration -----------------------------------------------------------------------


def test_the_secret_is_shown_once_and_stored_encrypted(client, tenant, register):
    created = put_webhook(client, tenant, "https://hooks.acme.example/privacy")
    assert created.status_code == 201
    secret = created.json["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert created.json["url"] == "https://hooks.acme.example/privacy"

    shown = client.get("/api/v1/subprocessors/webhook", headers=tenant.headers)
    assert shown.status_code == 200 and "secret" not in shown.json
    row = db.session.scalar(select(Webhook))
    assert secret.encode() not in bytes(row.secret_ct)
    assert row.unseal_secret() == secret

    moved = put_webhook(client, tenant, "https://hooks.acme.example/v2")
    assert moved.status_code == 200 and "secret" not in moved.json
    assert db.session.scalar(select(Webhook)).unseal_secret() == secret

    rotated = put_webhook(client, tenant, "https://hooks.acme.example/v2", rotate_secret=True)
    assert rotated.status_code == 200 and rotated.json["secret"] not in (secret, None)

    assert client.delete("/api/v1/subprocessors/webhook", headers=tenant.headers).status_code == 204
    assert client.get("/api/v1/subprocessors/webhook", headers=tenant.headers).status_code == 404
    assert client.delete("/api/v1/subprocessors/webhook", headers=tenant.headers).status_code == 404
    actions = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert [a for a in actions if a.startswith("subprocessor.webhook")] == [
        "subprocessor.webhook_created",
        "subprocessor.webhook_changed",
        "subprocessor.webhook_changed",
        "subprocessor.webhook_rotated",
        "subprocessor.webhook_deleted",
    ]


def test_only_admins_configure_webhooks_and_only_their_own(
    client,
    tenant,
    other_tenant,
    register,
):
    member = tenant.token_for("member")
    assert client.get("/api/v1/subprocessors/webhook", headers=member).status_code == 403
    assert (
        client.put(
            "/api/v1/subprocessors/webhook", json={"url": "https://x.example/"}, headers=member
        ).status_code
        == 403
    )
    put_webhook(client, tenant, "https://hooks.acme.example/privacy")
    theirs = client.get("/api/v1/subprocessors/webhook", headers=other_tenant.headers)
    assert theirs.status_code == 404 and "acme" not in theirs.get_data(as_text=True)


@pytest.mark.parametrize(
    "url",
    ["ftp://hooks.example/x", "/relative", "https://user:pw@hooks.example/x", "notaurl"],
)
def test_webhook_urls_are_checked(client, tenant, register, url):
    response = put_webhook(client, tenant, url)
    # The form the API document states is checked with the body, the rest by the service.
    errors = response.json["errors"]
    assert response.status_code == 422 and "url" in errors.get("json", errors)


def test_production_refuses_private_hosts_and_plain_http(
    app,
    client,
    tenant,
    register,
    monkeypatch,
):
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    for url in (
        "http://hooks.acme.example/x",
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://169.254.169.254/latest",
    ):
        assert put_webhook(client, tenant, url).status_code == 422, url
    assert put_webhook(client, tenant, "https://hooks.acme.example/x").status_code == 201


# -- delivery ----------------------------------------------------------------------------


def test_a_notice_is_posted_signed_with_a_timestamp(
    client, tenant, other_tenant, hooked, receiver, queue
):
    _sp, version = activate_us()
    delivered(queue)

    (hit,) = receiver.hits
    assert hit.path == "/hook" and hit.headers["Content-Type"] == "application/json"
    timestamp = hit.headers["X-Privacy-Timestamp"]
    assert abs(int(timestamp) - hit.received) < 5
    signature = hit.headers["X-Privacy-Signature"]
    assert signature == expected_signature(hooked, timestamp, hit.body)
    assert webhooks.verify(hooked, hit.body, timestamp, signature)
    # Another body, another time, or another secret: refused.
    assert not webhooks.verify(hooked, hit.body + b" ", timestamp, signature)
    assert not webhooks.verify(hooked, hit.body, str(int(timestamp) - 1), signature)
    assert not webhooks.verify(hooked, hit.body, timestamp, signature, now=int(timestamp) + 301)
    assert not webhooks.verify("whsec_other", hit.body, timestamp, signature)

    body = hit.json
    assert body["event"] == "subprocessors.list_changed"
    assert body["list_version"] == 1 and body["change"] == "added"
    assert body["effective_at"] == version.effective_at.isoformat()
    assert body["notice"] == version.notice
    sp = body["notice"]["subprocessor"]
    assert sp["legal_name"] == "Hosting Inc." and sp["address"] and sp["contact"]
    assert sp["locations"][0]["safeguard"].startswith("SCC module 3")
    assert ANSWER_SECRET not in str(body)

    by_account = {n.account_id: n for n in notice_rows()}
    mine = by_account[tenant.account.id]
    assert (mine.webhook_state, mine.webhook_attempts, mine.webhook_error) == ("delivered", 1, None)
    # No webhook, no delivery.
    assert by_account[other_tenant.account.id].webhook_state is None
    view = client.get("/api/v1/subprocessors/notices", headers=tenant.headers).json
    assert view[0]["webhook"] == {"state": "delivered", "attempts": 1, "error": None}


def test_the_readme_snippet_verifies_a_real_delivery(hooked, receiver, queue):
    section = (ROOT / "README.md").read_text().split("## Sub-processors", 1)[1]
    snippet = section.split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 - our own README
    activate_us()
    delivered(queue)

    (hit,) = receiver.hits
    assert namespace["verify"](hooked, hit.body, hit.headers)
    assert not namespace["verify"](hooked, hit.body + b"x", hit.headers)
    assert not namespace["verify"]("whsec_wrong", hit.body, hit.headers)


def test_a_receiver_that_fails_twice_gets_the_notice_on_the_third_try(hooked, receiver, queue):
    receiver.script = [500, 503]
    activate_us()
    delivered(queue)

    (row,) = notice_rows()
    assert (row.webhook_state, row.webhook_attempts, row.webhook_error) == ("delivered", 3, None)
    assert len(receiver.hits) == 3
    assert len({hit.body for hit in receiver.hits}) == 1  # the same body every time
    for hit in receiver.hits:  # each try signed with its own timestamp
        stamp = hit.headers["X-Privacy-Timestamp"]
        assert hit.headers["X-Privacy-Signature"] == expected_signature(hooked, stamp, hit.body)


def test_every_try_of_a_notice_carries_the_same_idempotency_key(hooked, receiver, queue):
    receiver.script = [500, 503]
    activate_us()
    delivered(queue)

    keys = {hit.headers["Idempotency-Key"] for hit in receiver.hits}
    (row,) = notice_rows()
    assert len(receiver.hits) == 3 and keys == {webhooks.idempotency_key(row)}


def test_a_receiver_that_always_fails_ends_failed_after_the_last_retry(
    hooked, receiver, caplog, queue
):
    receiver.default = 500
    activate_us()
    delivered(queue)

    (row,) = notice_rows()
    assert row.webhook_state == "failed"
    assert row.webhook_attempts == outbound.MAX_ATTEMPTS
    assert row.webhook_error == "HTTP 500"
    assert len(receiver.hits) == outbound.MAX_ATTEMPTS
    assert "giving up" in caplog.text and ANSWER_SECRET not in caplog.text


def test_an_unreachable_receiver_records_the_error_class(client, tenant, register, queue):
    backdate(tenant)
    put_webhook(client, tenant, f"http://127.0.0.1:{helpers.free_port()}/hook")
    activate_us()
    delivered(queue)

    (row,) = notice_rows()
    assert (row.webhook_state, row.webhook_error) == ("failed", "ConnectionError")


def test_a_redirect_is_not_followed(hooked, receiver, monkeypatch, queue):
    receiver.default = 307
    activate_us()
    delivered(queue)

    (row,) = notice_rows()
    assert (row.webhook_state, row.webhook_error) == ("failed", "HTTP 307")


def test_a_delivered_notice_is_not_sent_again_and_a_removed_webhook_cancels(
    client,
    tenant,
    hooked,
    receiver,
    monkeypatch,
    queue,
):
    activate_us()
    (job,) = queue.take("processors.deliver_webhook")
    queue.run_one(job)
    (row,) = notice_rows()
    assert row.webhook_state == "delivered"
    assert queue.run_one(job).result == "delivered"  # the message delivered again
    assert queue.run_one(Job("processors.deliver_webhook", (10**9,), {})).result == "gone"
    assert len(receiver.hits) == 1

    # The worker is slow: the webhook is removed before the next notice goes out.
    activate_us("Support Inc.")
    assert client.delete("/api/v1/subprocessors/webhook", headers=tenant.headers).status_code == 204
    second = notice_rows()[-1]
    assert second.webhook_state == "pending"
    (run,) = delivered(queue)
    assert run.result == "cancelled"
    assert notice_rows()[-1].webhook_state == "cancelled"
    assert len(receiver.hits) == 1


def test_a_secret_the_key_ring_cannot_read_fails_at_once(hooked, receiver, queue):
    row = db.session.scalar(select(Webhook))
    row.key_id = "gone"  # as if its data key had been dropped from the ring
    db.session.commit()
    activate_us()
    delivered(queue)

    (notice,) = notice_rows()
    assert (notice.webhook_state, notice.webhook_attempts) == ("failed", 1)
    assert notice.webhook_error == "secret unreadable: rotate it"
    assert receiver.hits == []


def test_production_refuses_a_private_destination_at_delivery(
    app, hooked, receiver, monkeypatch, queue
):
    # Stored before production was switched on (or resolving elsewhere back then).
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    activate_us()
    delivered(queue)

    (row,) = notice_rows()
    assert (row.webhook_state, row.webhook_attempts) == ("failed", 1)
    assert row.webhook_error == "refused: https required"
    assert receiver.hits == []


def test_a_rolled_back_activation_sends_nothing(hooked, receiver, queue):
    sp = services.create(
        data={
            "legal_name": "Rolled Back GmbH",
            "address": "Berlin",
            "contact": "x@rb.example",
            "purpose": "none",
            "locations": ["DE"],
        },
        actor="operator:dpo",
    )
    services.add_dpa(sp, version="1", signed_on="2026-01-10", actor="operator:dpo")
    services.activate(sp, actor="operator:dpo")
    db.session.rollback()
    assert queue.jobs == []
    assert receiver.hits == [] and notice_rows() == []


# -- the page ----------------------------------------------------------------------------


def test_an_admin_sets_up_rotates_and_removes_the_webhook_on_the_page(
    app,
    tenant,
    register,
    receiver,
):
    browser = PageBrowser(app, tenant.admin)
    assert "Set up webhook" in text(browser.get())

    refused = browser.post("/account/subprocessors/webhook", {"url": "ftp://x.example/"})
    assert refused.status_code == 422

    created = browser.post("/account/subprocessors/webhook", {"url": receiver.url()})
    assert created.status_code == 201
    html = text(created)
    assert 'id="webhook-secret"' in html and "not shown again" in html
    secret = html.split('id="webhook-secret">')[1].split("<")[0]
    row = db.session.scalar(select(Webhook))
    assert row.unseal_secret() == secret
    assert secret not in text(browser.get())  # shown once

    rotated = browser.post("/account/subprocessors/webhook/rotate")
    assert rotated.status_code == 200
    new_secret = text(rotated).split('id="webhook-secret">')[1].split("<")[0]
    assert new_secret != secret
    db.session.expire_all()
    assert db.session.scalar(select(Webhook)).unseal_secret() == new_secret

    removed = browser.post("/account/subprocessors/webhook/delete")
    assert removed.status_code == 303
    assert db.session.scalar(select(Webhook)) is None
    assert browser.post("/account/subprocessors/webhook/rotate").status_code == 404
