"""The public request form: form -> e-mailed link -> confirmation -> processing, the same
answer for every address, single-use expiring links, rate limits, and expiry of requests
nobody verified."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy import update

from privacy.audit import services as audit
from privacy.audit.models import AuditEvent
from privacy.database import utcnow
from privacy.dsr import services
from privacy.dsr import tasks
from privacy.dsr import verification
from privacy.dsr.models import KINDS
from privacy.dsr.models import DataSubjectRequest
from privacy.dsr.models import Verification
from privacy.dsr.routes import form
from privacy.extensions import db
from privacy.inventory import services as inventory
from privacy.inventory.models import Subject
from tests.auth.conftest import CSRF
from tests.auth.conftest import Browser
from tests.auth.conftest import messages
from workers import schedule

EMAIL = "ana.lima@example.org"
VERIFY_LINK = re.compile(r"https?://\S+(/privacy-request/verify/[A-Za-z0-9_-]+)")
RESULTS_LINK = re.compile(r"https?://\S+(/dsr/results/[A-Za-z0-9_-]+)")


@pytest.fixture
def subject(tenant):
    crm = inventory.create_system(tenant.account, name="CRM", kind="crm", region="eu", actor="t")
    created = inventory.create_subject(
        tenant.account, name="Ana Lima", email=EMAIL, systems=[crm.public_id], actor="t"
    )
    db.session.commit()
    return created


class Queued:
    """The arguments of the queued jobs of one task, compared like a list."""

    def __init__(self, queue, name: str) -> None:
        self.queue, self.name = queue, name

    def args(self) -> list[tuple]:
        return [job.args for job in self.queue.jobs if job.name == self.name]

    def __eq__(self, other) -> bool:
        return self.args() == other

    def __len__(self) -> int:
        return len(self.args())


@pytest.fixture
def paused(queue) -> Queued:
    """Verified requests stay verified: their dsr.process jobs stay queued, never run."""
    return Queued(queue, "dsr.process")


@pytest.fixture
def browser(app):
    return Browser(app)


def form_url(tenant) -> str:
    return f"/privacy-request/{tenant.account.public_id}"


def send_form(browser, tenant, email: str = EMAIL, kind: str = "access", **extra):
    data = {"kind": kind, "email": email, **extra}
    return browser.post(form_url(tenant), data, page=form_url(tenant))


def mails(outbox: Path) -> list:
    return messages(outbox) if outbox.exists() else []


def body_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def verify_link(message) -> str:
    (path,) = VERIFY_LINK.findall(body_of(message))
    return path


def confirm(browser, path: str):
    shown = browser.get(path)
    assert shown.status_code == 200, shown.get_data(as_text=True)
    token = CSRF.search(shown.get_data(as_text=True)).group(1)
    secret = path.rsplit("/", 1)[1]
    return browser.client.post(
        "/privacy-request/verify", data={"csrf_token": token, "token": secret}
    )


def only_request() -> DataSubjectRequest:
    (request,) = db.session.scalars(select(DataSubjectRequest)).all()
    db.session.refresh(request)
    return request


# -- the whole path ---------------------------------------------------------------------


def test_an_access_request_goes_from_the_form_through_the_link_to_completion(
    tenant, subject, browser, outbox, queue
):
    page = browser.get(form_url(tenant))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Acme GmbH" in text and 'name="csrf_token"' in text
    for kind in KINDS:
        assert f'value="{kind}"' in text

    sent = send_form(browser, tenant, message="Please include my order history.")

    assert sent.status_code == 303
    assert sent.headers["Location"] == f"{form_url(tenant)}/sent"
    assert "Check your e-mail" in browser.get(sent.headers["Location"]).get_data(as_text=True)
    request = only_request()
    assert (request.source, request.kind, request.status) == ("form", "access", "unverified")
    assert request.unseal_email() == EMAIL
    assert request.unseal_message() == "Please include my order history."
    (mail,) = mails(outbox)
    assert mail["To"] == EMAIL and "Acme GmbH" in mail["Subject"]

    done = confirm(browser, verify_link(mail))

    assert done.status_code == 200
    assert only_request().status == "verified"
    queue.run()  # the worker
    request = only_request()
    assert request.due_at.strftime("%d %B %Y") in done.get_data(as_text=True)
    assert request.status == "completed" and request.results_count == 2
    assert [e.action for e in request.events] == [
        "received",
        "unverified",
        "verified",
        "in_progress",
        "completed",
    ]
    completion = mails(outbox)[1]
    assert completion["To"] == EMAIL and "is complete" in completion["Subject"]
    (results,) = RESULTS_LINK.findall(body_of(completion))
    assert browser.get(results).status_code == 200


def test_an_erasure_request_is_carried_out_once_confirmed(tenant, subject, browser, outbox, queue):
    send_form(browser, tenant, kind="erasure")
    assert db.session.scalar(select(Subject)) is not None  # nothing erased before the link

    assert confirm(browser, verify_link(mails(outbox)[0])).status_code == 200
    queue.run()

    assert only_request().status == "completed"
    assert db.session.scalar(select(Subject)) is None
    assert "erased" in body_of(mails(outbox)[1])


def test_the_address_is_trimmed_and_kept_as_written_when_stored_and_written_to(
    tenant, browser, outbox, paused
):
    send_form(browser, tenant, email="  Ana.Lima@Example.ORG ")

    assert only_request().unseal_email() == "Ana.Lima@Example.ORG"
    assert mails(outbox)[0]["To"] == "Ana.Lima@Example.ORG"


# -- what the form reveals --------------------------------------------------------------


def test_the_answer_is_the_same_for_known_and_unknown_addresses(
    app, tenant, subject, outbox, monkeypatch
):
    def no_lookups(*args, **kwargs):
        raise AssertionError("the inventory was consulted before verification")

    monkeypatch.setattr(services, "find_subjects", no_lookups)
    monkeypatch.setattr(inventory, "find_by_email", no_lookups)
    answers = []
    for email in (EMAIL, "stranger@example.net"):
        browser = Browser(app)
        response = send_form(browser, tenant, email=email)
        page = browser.get(response.headers["Location"])
        body = CSRF.sub("", page.get_data(as_text=True))
        answers.append((response.status_code, response.headers["Location"], page.status_code, body))

    assert answers[0] == answers[1]
    assert EMAIL not in answers[0][3]
    # Both get a link: whether the address is held is found out only once it is verified.
    assert sorted(m["To"] for m in mails(outbox)) == sorted([EMAIL, "stranger@example.net"])


def test_nothing_is_processed_before_the_link_is_used(tenant, subject, browser, outbox, paused):
    send_form(browser, tenant)
    (mail,) = mails(outbox)
    browser.get(verify_link(mail))  # opening the page (a mail scanner) changes nothing

    request = only_request()
    assert request.status == "unverified" and paused == []
    assert request.results_count is None and request.subject_ref is None

    assert confirm(browser, verify_link(mail)).status_code == 200

    assert only_request().status == "verified"
    assert paused == [(request.id,)]


def test_the_link_is_stored_only_as_a_hash(tenant, browser, outbox, paused):
    send_form(browser, tenant)
    secret = verify_link(mails(outbox)[0]).rsplit("/", 1)[1]

    stored = db.session.scalar(select(Verification))
    assert len(stored.token_hash) == 64 and secret not in stored.token_hash


# -- the link ---------------------------------------------------------------------------


def test_a_link_works_once(app, tenant, browser, outbox, paused):
    send_form(browser, tenant)
    path = verify_link(mails(outbox)[0])
    assert confirm(browser, path).status_code == 200

    again = Browser(app)
    shown = again.get(path)
    assert shown.status_code == 400
    assert "confirmed already" in shown.get_data(as_text=True)
    token = again.csrf(form_url(tenant))
    reused = again.client.post(
        "/privacy-request/verify", data={"csrf_token": token, "token": path.rsplit("/", 1)[1]}
    )
    assert reused.status_code == 400
    assert len(paused) == 1 and only_request().status == "verified"


def test_a_link_expires_after_24_hours(tenant, browser, outbox, paused):
    send_form(browser, tenant)
    path = verify_link(mails(outbox)[0])
    request = only_request()
    link = db.session.scalar(select(Verification))
    assert link.expires_at - request.received_at == pytest.approx(
        timedelta(hours=24), abs=timedelta(minutes=1)
    )
    token = CSRF.search(browser.get(path).get_data(as_text=True)).group(1)

    db.session.execute(update(Verification).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()

    shown = browser.get(path)
    assert shown.status_code == 400 and "expired" in shown.get_data(as_text=True)
    used = browser.client.post(
        "/privacy-request/verify", data={"csrf_token": token, "token": path.rsplit("/", 1)[1]}
    )
    assert used.status_code == 400 and "expired" in used.get_data(as_text=True)
    assert only_request().status == "unverified" and paused == []


def test_an_unknown_link_is_404(browser, tenant):
    assert browser.get("/privacy-request/verify/not-a-real-link").status_code == 404
    token = browser.csrf(form_url(tenant))
    response = browser.client.post(
        "/privacy-request/verify", data={"csrf_token": token, "token": "not-a-real-link"}
    )
    assert response.status_code == 404


def test_confirming_needs_the_csrf_token(tenant, browser, outbox, paused):
    send_form(browser, tenant)
    secret = verify_link(mails(outbox)[0]).rsplit("/", 1)[1]

    response = browser.client.post("/privacy-request/verify", data={"token": secret})

    assert response.status_code == 400
    assert only_request().status == "unverified"


# -- bad input --------------------------------------------------------------------------


def test_an_unknown_account_is_404(browser, tenant):
    other = f"/privacy-request/{uuid.uuid4()}"
    assert browser.get(other).status_code == 404
    assert browser.get(f"{other}/sent").status_code == 404
    assert browser.get("/privacy-request/not-a-uuid").status_code == 404
    response = browser.post(other, {"kind": "access", "email": EMAIL}, page=form_url(tenant))
    assert response.status_code == 404
    assert db.session.scalar(select(DataSubjectRequest)) is None


@pytest.mark.parametrize(
    "data,field,message",
    [
        ({"email": EMAIL}, "kind", "Choose what you are asking for."),
        ({"kind": "rectification", "email": EMAIL}, "kind", "Choose what you are asking for."),
        ({"kind": "access"}, "email", "E-mail is required."),
        ({"kind": "access", "email": "not an address"}, "email", "Not a valid e-mail address."),
        (
            {"kind": "erasure", "email": EMAIL, "message": "x" * 2001},
            "message",
            "at most 2000 characters",
        ),
    ],
)
def test_bad_input_is_422_with_the_form_and_field_messages(
    tenant, browser, outbox, data, field, message
):
    response = browser.post(form_url(tenant), data, page=form_url(tenant))

    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert message in text and 'name="kind"' in text and 'name="csrf_token"' in text
    if data.get("email"):
        assert f'value="{data["email"]}"' in text  # what was typed is kept
    assert db.session.scalar(select(DataSubjectRequest)) is None
    assert mails(outbox) == []


def test_a_message_of_2000_characters_is_accepted(tenant, browser, outbox, paused):
    response = send_form(browser, tenant, message="y" * 2000)

    assert response.status_code == 303
    assert only_request().unseal_message() == "y" * 2000


def test_the_form_explains_every_kind_of_request():
    assert tuple(value for value, *_ in form.CHOICES) == KINDS
    assert set(verification.KIND_LABELS) == set(KINDS)


# -- rate limits ------------------------------------------------------------------------


def test_submissions_are_rate_limited_per_address_and_per_client(
    app, tenant, browser, outbox, paused, monkeypatch
):
    monkeypatch.setitem(app.config, "REQUEST_RATE_LIMIT", "2 per hour")

    statuses = [send_form(browser, tenant).status_code for _ in range(3)]

    assert statuses == [303, 303, 429]
    limited = send_form(browser, tenant, email=EMAIL.upper())  # the same address
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    # Another address from the same client is still served ...
    assert send_form(browser, tenant, email="someone@example.org").status_code == 303
    # ... until the client's own limit (ten times the per-address one) is reached.
    statuses = [
        send_form(browser, tenant, email=f"p{n}@example.org").status_code for n in range(20)
    ]
    assert 429 in statuses and statuses.index(429) >= 15
    assert len(mails(outbox)) == sum(1 for r in db.session.scalars(select(DataSubjectRequest)))


def test_confirmation_links_are_limited_per_account_with_a_clear_page(
    app, tenant, browser, outbox, paused, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIL_ACCOUNT_RATE_LIMIT", "2 per hour")

    statuses = [send_form(browser, tenant, email=f"p{n}@example.org").status_code for n in range(3)]

    assert statuses == [303, 303, 429]
    limited = send_form(browser, tenant, email="p9@example.org")
    assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 3600
    page = limited.get_data(as_text=True)
    assert "Too many confirmation links were sent from this account lately" in page
    assert "try again in" in page and "p9@" not in page
    db.session.rollback()  # as the end of the request does (the tests share its session)
    assert len(list(db.session.scalars(select(DataSubjectRequest)))) == 2
    assert len(mails(outbox)) == 2


def test_confirmations_are_rate_limited_per_client(app, tenant, browser, monkeypatch):
    monkeypatch.setitem(app.config, "REQUEST_RATE_LIMIT", "1 per hour")
    token = browser.csrf(form_url(tenant))

    statuses = [
        browser.client.post(
            "/privacy-request/verify", data={"csrf_token": token, "token": f"guess-{n}"}
        ).status_code
        for n in range(11)
    ]

    assert statuses == [404] * 10 + [429]


# -- requests nobody verified -----------------------------------------------------------


def test_the_expiry_task_cancels_stale_unverified_requests(tenant, app, outbox, paused, queue):
    for email in ("stale@example.org", "fresh@example.org", "done@example.org"):
        send_form(Browser(app), tenant, email=email)
    stale, fresh, done = db.session.scalars(
        select(DataSubjectRequest).order_by(DataSubjectRequest.id)
    ).all()
    stale_link, _, done_link = (verify_link(m) for m in mails(outbox))
    assert confirm(Browser(app), done_link).status_code == 200
    long_ago = utcnow() - timedelta(hours=26)
    db.session.execute(
        update(DataSubjectRequest)
        .where(DataSubjectRequest.id.in_([stale.id, done.id]))
        .values(received_at=long_ago)
    )
    db.session.commit()

    tasks.expire_unverified.delay()  # as beat queues it
    assert queue.run("dsr.expire_unverified")[0].result == 1

    for request in (stale, fresh, done):
        db.session.refresh(request)
    assert (stale.status, fresh.status, done.status) == ("cancelled", "unverified", "verified")
    assert stale.events[-1].note == "not verified within 24 hours"
    assert stale.email_ct is None and stale.message_ct is None  # nothing kept of the address
    assert fresh.email_ct is not None and done.email_ct is not None
    refused = Browser(app).get(stale_link)
    assert refused.status_code == 400 and "cancelled" in refused.get_data(as_text=True)
    assert verification.expire_unverified(actor=audit.SYSTEM) == 0


def test_a_request_within_its_grace_margin_is_not_cancelled(tenant, browser, outbox, paused):
    send_form(browser, tenant)
    db.session.execute(
        update(DataSubjectRequest).values(received_at=utcnow() - timedelta(hours=24, minutes=30))
    )
    db.session.commit()

    assert verification.expire_unverified(actor=audit.SYSTEM) == 0
    assert only_request().status == "unverified"


def test_the_worker_runs_the_expiry_hourly(app):
    assert "dsr.expire_unverified" in app.extensions["celery"].tasks
    (entry,) = [e for e in schedule.BEAT_SCHEDULE.values() if e["task"] == "dsr.expire_unverified"]
    assert entry["schedule"].minute == {25} and len(entry["schedule"].hour) == 24


# -- no address in URLs or logs ---------------------------------------------------------


def test_the_address_never_appears_in_urls_logs_or_the_audit_log(
    tenant, subject, browser, outbox, caplog, queue
):
    caplog.set_level(logging.DEBUG)
    urls = []

    sent = send_form(browser, tenant)
    urls.append(sent.headers["Location"])
    first = mails(outbox)[0]
    urls.append(verify_link(first))
    confirm(browser, verify_link(first))
    queue.run()
    urls += RESULTS_LINK.findall(body_of(mails(outbox)[1]))

    assert len(urls) == 3
    for url in urls:
        assert "ana" not in url.lower() and "example.org" not in url
    assert caplog.records
    assert "ana.lima" not in caplog.text.lower()
    assert "ana.lima" not in str([e.data for e in db.session.scalars(select(AuditEvent))])
