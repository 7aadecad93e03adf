"""The daily reminder: each account's admins hear once a day of requests due within 7 days
and overdue ones, with ids, kinds and due dates only."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from privacy.accounts import services as accounts
from privacy.audit.models import AuditEvent
from privacy.database import utcnow
from privacy.dsr import deadlines
from privacy.dsr import services
from privacy.dsr import tasks
from privacy.extensions import db
from tests.auth.conftest import messages
from workers import schedule

REQUESTER = "ana.lima@example.org"


def submit(tenant, *, received_days_ago: int = 0, kind: str = "access", **kw):
    request = services.submit(
        tenant.account, kind=kind, source="form", email=REQUESTER, actor="t", **kw
    )
    moment = utcnow() - timedelta(days=received_days_ago)
    request.submitted_at = request.received_at = moment
    request.due_at = deadlines.due_date(moment)
    db.session.commit()
    return request


def mails(outbox) -> list:
    return messages(outbox) if outbox.exists() else []


def test_admins_are_reminded_of_due_and_overdue_requests_once_a_day(tenant, outbox, queue):
    second_admin = accounts.add_member(
        tenant.account, email="bo@acme.example", name="Bo", role="admin", actor="t"
    )
    accounts.add_member(
        tenant.account, email="mia@acme.example", name="Mia Member", role="member", actor="t"
    )
    db.session.commit()
    overdue = submit(tenant, received_days_ago=40, kind="erasure")
    soon = submit(tenant, received_days_ago=27)
    later = submit(tenant, received_days_ago=1)
    done = submit(tenant, received_days_ago=40)
    services.reject(tenant.account, done, reason="duplicate", actor="t")
    db.session.commit()
    before = len(mails(outbox))  # the rejection told its requester

    tasks.remind.delay()  # as beat queues it
    assert queue.run("dsr.remind")[0].result == 2

    sent = mails(outbox)[before:]
    assert sorted(m["To"] for m in sent) == ["admin@acme.example", second_admin.email]
    text = sent[0].get_body(("plain",)).get_content()
    assert str(overdue.public_id) in text and str(soon.public_id) in text
    assert "erasure" in text and "OVERDUE" in text
    assert overdue.due_at.strftime("%Y-%m-%d") in text
    assert str(later.public_id) not in text and str(done.public_id) not in text
    assert REQUESTER not in text and REQUESTER not in sent[0]["Subject"]
    assert "1 overdue" in sent[0]["Subject"]
    db.session.expire_all()
    assert overdue.reminded_at is not None and soon.reminded_at is not None
    assert later.reminded_at is None

    # The same day again: nothing new.
    tasks.remind.delay()
    assert queue.run("dsr.remind")[0].result == 0
    assert len(mails(outbox)) == before + 2
    recorded = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "dsr.reminded"))
    assert [e.data for e in recorded] == [{"requests": 2, "overdue": 1, "admins": 2}]


def test_the_next_day_they_are_reminded_again(tenant, outbox):
    request = submit(tenant, received_days_ago=40)
    assert tasks.remind() == 1
    request.reminded_at = utcnow() - timedelta(days=1)  # yesterday's reminder
    db.session.commit()

    assert tasks.remind() == 1
    assert len(mails(outbox)) == 2


def test_a_request_newly_due_the_same_day_sends_a_fresh_list(tenant, outbox):
    first = submit(tenant, received_days_ago=40)
    assert tasks.remind() == 1
    second = submit(tenant, received_days_ago=26)

    assert tasks.remind() == 1
    last = mails(outbox)[-1].get_body(("plain",)).get_content()
    assert str(first.public_id) in last and str(second.public_id) in last
    assert tasks.remind() == 0


def test_accounts_are_reminded_separately(tenant, other_tenant, outbox):
    ours = submit(tenant, received_days_ago=40)
    theirs = submit(other_tenant, received_days_ago=28)

    assert tasks.remind() == 2

    by_recipient = {m["To"]: m.get_body(("plain",)).get_content() for m in mails(outbox)}
    assert str(ours.public_id) in by_recipient["admin@acme.example"]
    assert str(theirs.public_id) not in by_recipient["admin@acme.example"]
    assert str(theirs.public_id) in by_recipient["boss@other.example"]
    assert str(ours.public_id) not in by_recipient["boss@other.example"]


def test_nothing_due_sends_nothing(tenant, outbox):
    submit(tenant, received_days_ago=0)
    assert tasks.remind() == 0
    assert mails(outbox) == []


def test_the_reminder_runs_daily_from_beat(app):
    assert "dsr.remind" in app.extensions["celery"].tasks
    (entry,) = [e for e in schedule.BEAT_SCHEDULE.values() if e["task"] == "dsr.remind"]
    assert entry["schedule"].hour == {7} and entry["schedule"].minute == {0}
    assert tasks.remind.name == "dsr.remind"
