"""Audit log: written with each change, readable by admins, tamper-evident, ids only."""

from __future__ import annotations

import json

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from privacy.audit import services as audit
from privacy.audit.models import AuditEvent
from privacy.extensions import db


def actions(tenant) -> list[str]:
    rows = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.account_ref == str(tenant.account.public_id))
        .order_by(AuditEvent.seq)
    )
    return [row.action for row in rows]


def test_changes_are_audited_with_request_id_and_actor(client, tenant):
    response = client.post(
        "/api/v1/subjects",
        json={"name": "Jane Roe", "email": "jane@example.org"},
        headers={**tenant.headers, "X-Request-ID": "req-123"},
    )
    assert response.status_code == 201
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "subject.created")
    ).one()
    assert event.request_id == "req-123"
    assert event.actor.startswith("token:")
    assert event.object_id == response.json["id"]
    assert actions(tenant) == [
        "account.created",
        "member.added",
        "token.created",
        "subject.created",
    ]


def test_failed_change_leaves_no_audit_row(client, tenant):
    body = {"name": "Jane Roe", "email": "jane@example.org"}
    client.post("/api/v1/subjects", json=body, headers=tenant.headers)
    before = db.session.scalar(select(func.count()).select_from(AuditEvent))
    assert client.post("/api/v1/subjects", json=body, headers=tenant.headers).status_code == 409
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_admins_read_their_account_audit_log_only(client, tenant, other_tenant):
    page = client.get("/api/v1/audit", headers=tenant.headers)
    assert page.status_code == 200
    assert {item["action"] for item in page.json["items"]} == {
        "account.created",
        "member.added",
        "token.created",
    }
    assert all(
        item["object_id"] != str(other_tenant.account.public_id) for item in page.json["items"]
    )
    filtered = client.get(
        "/api/v1/audit", query_string={"action": "token.created"}, headers=tenant.headers
    )
    assert [item["action"] for item in filtered.json["items"]] == ["token.created"]


def test_audit_rows_hold_no_names_or_emails(client, tenant):
    client.post(
        "/api/v1/subjects",
        json={"name": "Jane Roe", "email": "jane@example.org"},
        headers=tenant.headers,
    )
    client.post(
        "/api/v1/members",
        json={"email": "mia@acme.example", "name": "Mia Member"},
        headers=tenant.headers,
    )
    dumped = json.dumps(
        [
            {c.name: str(getattr(row, c.name)) for c in AuditEvent.__table__.columns}
            for row in db.session.scalars(select(AuditEvent))
        ]
    )
    for secret in ("Jane", "jane@example.org", "mia@acme.example", "Mia", "admin@acme.example"):
        assert secret not in dumped


def verify_messages() -> list[str]:
    return list(audit.verify())


def test_verify_passes_on_an_untouched_log(client, tenant, other_tenant):
    assert verify_messages() == []


def test_verify_finds_an_edited_row(tenant):
    db.session.execute(
        update(AuditEvent)
        .where(AuditEvent.action == "member.added")
        .values(data={"role": "member"})
    )
    db.session.commit()
    assert any("edited" in m for m in verify_messages())


def test_verify_finds_a_deleted_row(tenant):
    db.session.execute(delete(AuditEvent).where(AuditEvent.action == "member.added"))
    db.session.commit()
    assert verify_messages()


def test_verify_finds_a_deleted_last_row(tenant):
    db.session.execute(delete(AuditEvent).where(AuditEvent.action == "token.created"))
    db.session.commit()
    assert any("deleted" in m for m in verify_messages())


def test_verify_finds_an_inserted_row(tenant):
    first = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).first()
    forged = AuditEvent(
        chain=first.chain,
        seq=99,
        account_ref=first.account_ref,
        actor="x",
        action="member.added",
        created_at=first.created_at,
        prev_hash=first.hash,
        hash=first.hash,
    )
    db.session.add(forged)
    db.session.commit()
    assert verify_messages()


def test_audit_verify_command_exit_codes(app, tenant):
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    db.session.execute(
        update(AuditEvent).where(AuditEvent.action == "token.created").values(actor="token:forged")
    )
    db.session.commit()
    bad = runner.invoke(args=["audit", "verify"])
    assert bad.exit_code == 1
    assert "problem" in bad.output
