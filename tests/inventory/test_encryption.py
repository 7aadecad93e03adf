"""Names and e-mails are encrypted at rest: the raw database holds no plaintext of them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from privacy.accounts.models import Member
from privacy.crypto import KeyRing
from privacy.crypto import new_key_entry
from privacy.dsr import results
from privacy.dsr import services as dsr
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db
from privacy.inventory.models import Subject
from privacy.keys import services as keys
from privacy.processors import webhooks
from privacy.processors.models import Webhook
from privacy.support import services as support
from privacy.support.models import Operator

PEOPLE = [
    ("Katarzyna Wróblewska", "katarzyna.wroblewska@example.pl"),
    ("Jean-Baptiste Poquelin", "jb.poquelin@example.fr"),
    ("Søren Kierkegaard", "soren@example.dk"),
]


def raw_database_bytes() -> bytes:
    """The database as stored: the SQLite file (and its WAL), or a pg_dump of PostgreSQL."""
    engine = db.engine
    if engine.dialect.name == "sqlite":
        db.session.remove()
        engine.dispose()
        path = Path(engine.url.database)
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    if not shutil.which("pg_dump"):
        pytest.fail("pg_dump is needed to read the raw PostgreSQL database")
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run(
        ["pg_dump", "--data-only", url], check=True, capture_output=True, env={**os.environ}
    ).stdout


def test_raw_database_holds_no_plaintext_names_or_emails(client, tenant):
    for name, email in PEOPLE:
        response = client.post(
            "/api/v1/subjects", json={"name": name, "email": email}, headers=tenant.headers
        )
        assert response.status_code == 201
    client.post(
        "/api/v1/members",
        json={"email": "mia.member@acme.example", "name": "Mia Member"},
        headers=tenant.headers,
    )
    db.session.commit()
    raw = raw_database_bytes()
    assert len(raw) > 1000
    for needle in [
        *(n for pair in PEOPLE for n in pair),
        "mia.member@acme.example",
        "Mia Member",
        "admin@acme.example",
        "Ada Admin",
    ]:
        for encoding in ("utf-8", "utf-16-le"):
            assert needle.encode(encoding) not in raw, needle
        assert needle.lower().encode() not in raw, needle


def test_rotation_reencrypts_under_newest_key_and_keeps_lookup(app, client, tenant):
    for name, email in PEOPLE:
        client.post("/api/v1/subjects", json={"name": name, "email": email}, headers=tenant.headers)
    old_ring = app.extensions["keyring"]
    app.extensions["keyring"] = KeyRing.parse(f"{app.config['DATA_KEYS']},{new_key_entry('k2')}")
    try:
        assert keys.pending(Subject) == 3
        # An interrupted run (one batch) resumes where it stopped.
        moved = keys.rotate(batch_size=2)
        assert moved == 3 + 1  # three subjects and the admin member
        assert keys.pending(Subject) == 0
        assert keys.pending(Member) == 0
        assert {s.key_id for s in db.session.scalars(select(Subject))} == {"k2"}
        found = client.post(
            "/api/v1/subjects/lookup", json={"email": PEOPLE[1][1]}, headers=tenant.headers
        )
        assert found.status_code == 200
        assert found.json["name"] == PEOPLE[1][0]
        assert keys.rotate() == 0
    finally:
        app.extensions["keyring"] = old_ring


def test_rotate_command_reports_and_status(app, tenant):
    runner = app.test_cli_runner()
    status = runner.invoke(args=["keys", "status"])
    assert "members: 0 row(s) under older keys" in status.output
    rotated = runner.invoke(args=["keys", "rotate"])
    assert rotated.exit_code == 0
    assert "0 row(s) re-encrypted" in rotated.output
    new = runner.invoke(args=["keys", "new"])
    assert new.output.strip().count(":") == 1


def test_rotation_also_moves_requests_operators_and_webhook_secrets(
    app, client, tenant, tmp_path, monkeypatch
):
    monkeypatch.setitem(app.config, "STORAGE_URL", f"file://{tmp_path / 'storage'}")
    monkeypatch.delitem(app.extensions, "storage", raising=False)
    support.create_operator(email="ops@platform.example", name="Ops", role="support", actor="t")
    request = dsr.submit(
        tenant.account,
        kind="access",
        source="form",
        email="ana@example.org",
        message="hola",
        actor="t",
    )
    hashed = dsr.submit(
        tenant.account, kind="access", source="opendsr", email_sha256="a" * 64, actor="t"
    )
    results.issue_link(request)
    link = results.issue_link(hashed)
    secret = webhooks.configure(tenant.account, url="https://hooks.example.org/x", actor="t")[1]
    db.session.commit()
    old_ring = app.extensions["keyring"]
    entry = new_key_entry("k2")
    app.extensions["keyring"] = KeyRing.parse(f"{app.config['DATA_KEYS']},{entry}")
    try:
        assert keys.pending(DataSubjectRequest) == 2 and keys.pending(Operator) == 1
        keys.rotate()
        # Only the new key is left: everything must still open.
        app.extensions["keyring"] = KeyRing.parse(entry)
        db.session.expire_all()
        request = db.session.get(DataSubjectRequest, request.id)
        assert request.unseal_email() == "ana@example.org" and request.unseal_message() == "hola"
        assert results.url_of(db.session.get(DataSubjectRequest, hashed.id)) == link
        webhook = db.session.scalar(select(Webhook))
        assert webhook.unseal_secret() == secret
        assert db.session.scalar(select(Operator)).email == "ops@platform.example"
    finally:
        app.extensions["keyring"] = old_ring
