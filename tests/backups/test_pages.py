"""The operators' backups page: runs with their failure reasons, drills, restores; operators
only."""

from __future__ import annotations

import uuid
from datetime import timedelta

from privacy.audit import services as audit
from privacy.backups.models import BackupRun
from privacy.backups.models import DrillReport
from privacy.database import utcnow
from privacy.extensions import db
from privacy.support import services as support
from tests.auth.conftest import browser  # noqa: F401 - fixture
from tests.auth.conftest import links_in
from tests.auth.conftest import messages

OPS = "olga@platform.example"


def signs_in(browser, outbox, email: str):  # noqa: F811 - the fixture imported above
    before = len(messages(outbox)) if outbox.exists() else 0
    assert browser.request_link(email).status_code == 303
    (link,) = links_in(messages(outbox)[before])
    assert browser.use_link(link).status_code == 303


def record_history():
    now = utcnow()
    db.session.add_all(
        [
            BackupRun(
                public_id=uuid.uuid4(),
                started_at=now - timedelta(days=1),
                finished_at=now - timedelta(days=1) + timedelta(seconds=42),
                status="succeeded",
                trigger="schedule",
                key="20260101T020000Z-a1b2c3",
                size=3 * 1024 * 1024,
                sha256="0" * 64,
                key_id="b1",
            ),
            BackupRun(
                public_id=uuid.uuid4(),
                started_at=now,
                finished_at=now + timedelta(seconds=3),
                status="failed",
                trigger="schedule",
                reason="The backup location is unreachable or refused the request "
                "(s3 put failed: EndpointConnectionError).",
            ),
            DrillReport(
                public_id=uuid.uuid4(),
                started_at=now,
                finished_at=now + timedelta(seconds=12),
                status="failed",
                backup_id="20260101T020000Z-a1b2c3",
                duration_seconds=12.5,
                checks=[
                    {"check": "checksum and decryption", "ok": True},
                    {"check": "rows in subjects", "expected": 7, "actual": 6, "ok": False},
                ],
            ),
        ]
    )
    audit.record(
        None,
        action="backup.restore_failed",
        object_type="backup",
        object_id="20260101T020000Z-a1b2c3",
        data={"target": "postgresql://db:5432/restored", "reason": "Key 'b1' does not open"},
        actor="cli",
    )
    db.session.commit()


def test_an_operator_sees_runs_with_failure_reasons_drills_and_restores(
    app,
    browser,  # noqa: F811
    outbox,  # noqa: F811
):
    support.create_operator(email=OPS, name="Olga Ops", role="support", actor="test")
    db.session.commit()
    record_history()
    signs_in(browser, outbox, OPS)

    page = browser.get("/ops/backups")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "s3 put failed: EndpointConnectionError" in html  # why the run failed
    assert "20260101T020000Z-a1b2c3" in html and "3.0 MiB" in html and "42.0 s" in html
    assert "FAILED: rows in subjects (expected 7, found 6)" in html
    assert "12.5 s" in html
    assert "Key &#39;b1&#39; does not open" in html and "postgresql://db:5432/restored" in html
    assert 'href="/ops/backups"' in browser.get("/support").get_data(as_text=True)  # in the nav


def test_the_page_is_empty_but_fine_without_history(app, browser, outbox):  # noqa: F811
    support.create_operator(email=OPS, name="Olga Ops", role="dpo", actor="test")
    db.session.commit()
    signs_in(browser, outbox, OPS)

    html = browser.get("/ops/backups").get_data(as_text=True)

    assert "No backup has run yet." in html and "No drill has run yet." in html


def test_a_member_of_an_account_gets_403(tenant, browser, outbox):  # noqa: F811
    record_history()
    signs_in(browser, outbox, "admin@acme.example")  # the account's admin, not an operator

    page = browser.get("/ops/backups")

    assert page.status_code == 403
    assert "EndpointConnectionError" not in page.get_data(as_text=True)
    assert 'href="/ops/backups"' not in browser.get("/members").get_data(as_text=True)


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    page = client.get("/ops/backups")

    assert page.status_code == 302
    assert page.headers["Location"].startswith("/auth/login?next=/ops/backups")
