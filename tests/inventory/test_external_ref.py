"""The controller's customer id (`external_ref`) is personal data: encrypted at rest, found
through a keyed index, re-encrypted by key rotation, carried over by the migration."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy import text

from privacy import create_app
from privacy import database
from privacy.accounts import services as accounts
from privacy.crypto import KeyRing
from privacy.crypto import new_key_entry
from privacy.extensions import db
from privacy.inventory import services as inventory
from privacy.inventory.models import Subject
from privacy.keys import services as keys
from tests.conftest import app_config
from tests.inventory.test_encryption import raw_database_bytes

REFS = ("cust-ref-0000917", "KD-Wróblewska-77", "crm:4471-alpha")


def create(client, tenant, n: int, ref: str | None, **extra):
    body = {"name": f"Person {n}", "email": f"person{n}@example.org", "external_ref": ref}
    response = client.post("/api/v1/subjects", json={**body, **extra}, headers=tenant.headers)
    assert response.status_code == 201, response.json
    return response.json


def listed(client, tenant, ref: str) -> list[str]:
    response = client.get(
        "/api/v1/subjects", query_string={"external_ref": ref}, headers=tenant.headers
    )
    assert response.status_code == 200
    return [row["id"] for row in response.json["items"]]


def test_raw_database_holds_no_plaintext_customer_ids(client, tenant):
    for n, ref in enumerate(REFS[:2]):
        create(client, tenant, n, ref)
    body = f"name,email,external_ref\nImported One,imported@example.org,{REFS[2]}\n"
    imported = client.post(
        "/api/v1/subjects/import", data=body, content_type="text/csv", headers=tenant.headers
    )
    assert imported.status_code == 201
    db.session.commit()

    raw = raw_database_bytes()
    for ref in REFS:
        for encoding in ("utf-8", "utf-16-le"):
            assert ref.encode(encoding) not in raw, ref
    row = db.session.scalar(select(Subject).where(Subject.external_ref_index.is_not(None)))
    assert row.external_ref_ct is not None and REFS[0].encode() not in row.external_ref_ct


def test_the_api_still_takes_and_gives_the_customer_id(client, tenant):
    created = create(client, tenant, 1, REFS[1])
    assert created["external_ref"] == REFS[1]
    changed = client.patch(
        f"/api/v1/subjects/{created['id']}", json={"external_ref": "new-7"}, headers=tenant.headers
    )
    assert changed.status_code == 200 and changed.json["external_ref"] == "new-7"
    exported = client.get("/api/v1/subjects/export", headers=tenant.headers).get_data(as_text=True)
    assert '"external_ref": "new-7"' in exported
    cleared = client.patch(
        f"/api/v1/subjects/{created['id']}", json={"external_ref": None}, headers=tenant.headers
    )
    assert cleared.json["external_ref"] is None
    db.session.commit()
    row = db.session.scalar(select(Subject))
    assert row.external_ref_ct is None and row.external_ref_index is None


def test_lookup_by_customer_id_goes_through_the_keyed_index(client, tenant, other_tenant):
    first = create(client, tenant, 1, "shared-9")
    second = create(client, tenant, 2, "shared-9")
    create(client, tenant, 3, "Shared-9")  # exact: another id
    create(client, other_tenant, 4, "shared-9")  # another account

    assert listed(client, tenant, "shared-9") == [first["id"], second["id"]]
    assert listed(client, tenant, "nobody") == []
    db.session.commit()
    index = inventory.customer_index(tenant.account, "shared-9")
    assert index != inventory.customer_index(other_tenant.account, "shared-9")
    assert (
        db.session.scalar(
            select(Subject.external_ref_index).where(Subject.public_id == uuid.UUID(first["id"]))
        )
        == index
    )


def test_rotation_re_encrypts_the_customer_id(app, client, tenant):
    created = create(client, tenant, 1, REFS[0])
    entry = new_key_entry("k2")
    old_ring = app.extensions["keyring"]
    app.extensions["keyring"] = KeyRing.parse(f"{app.config['DATA_KEYS']},{entry}")
    try:
        before = db.session.scalar(select(Subject.external_ref_ct))
        assert keys.rotate() >= 1
        db.session.expire_all()
        row = db.session.scalar(select(Subject))
        assert row.key_id == "k2" and row.external_ref_ct != before
        app.extensions["keyring"] = KeyRing.parse(entry)  # the old key is gone
        db.session.expire_all()
        assert db.session.scalar(select(Subject)).external_ref == REFS[0]
        assert listed(client, tenant, REFS[0]) == [created["id"]]
    finally:
        app.extensions["keyring"] = old_ring


def test_a_change_to_a_row_under_an_older_key_keeps_the_whole_row_readable(app, client, tenant):
    created = create(client, tenant, 1, REFS[0])
    entry = new_key_entry("k2")
    old_ring = app.extensions["keyring"]
    app.extensions["keyring"] = KeyRing.parse(f"{app.config['DATA_KEYS']},{entry}")
    try:
        renamed = client.patch(
            f"/api/v1/subjects/{created['id']}", json={"name": "New Name"}, headers=tenant.headers
        )
        assert renamed.json["external_ref"] == REFS[0]
        recoded = client.patch(
            f"/api/v1/subjects/{created['id']}",
            json={"external_ref": "other-1"},
            headers=tenant.headers,
        )
        assert recoded.json["name"] == "New Name" and recoded.json["email"] == created["email"]
        app.extensions["keyring"] = KeyRing.parse(entry)  # one key id opens the row
        db.session.expire_all()
        row = db.session.scalar(select(Subject))
        assert (row.name, row.external_ref) == ("New Name", "other-1")
    finally:
        app.extensions["keyring"] = old_ring


def raw_file(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_the_migration_encrypts_existing_customer_ids_and_downgrade_restores_them(app, tmp_path):
    from flask_migrate import downgrade
    from flask_migrate import upgrade

    path = tmp_path / "m.sqlite3"
    scratch = create_app(app_config(SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}"))
    database.init_migrations(scratch)
    with scratch.app_context():
        upgrade(revision="9e3b5c7a1d42")  # before
        account, _, _ = accounts.create_account(
            name="Acme", region="eu", admin_email="a@acme.example", admin_name=None, actor="t"
        )
        subject = Subject(account_id=account.id)
        subject.set_contact(name="Old Row", email="old@acme.example", index_scope="x")
        db.session.commit()
        db.session.execute(
            text(
                "INSERT INTO subjects (public_id, account_id, name_ct, email_ct, key_id, "
                "email_index, external_ref, created_at, updated_at) VALUES (:p, :a, :n, :e, "
                ":k, :i, :r, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {
                "p": subject.public_id.hex,
                "a": account.id,
                "n": subject.name_ct,
                "e": subject.email_ct,
                "k": subject.key_id,
                "i": subject.email_index,
                "r": "legacy-cust-4711",
            },
        )
        db.session.execute(
            text(
                "INSERT INTO dsr_requests (public_id, account_id, subject_request_id, kind, "
                "source, status, customer_id, callback_urls, submitted_at, received_at, due_at, "
                "no_data_held) VALUES (:p, :a, :s, 'access', 'opendsr', 'completed', :c, '[]', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0)"
            ),
            {"p": "1" * 32, "a": account.id, "s": "2" * 32, "c": "legacy-cust-4711"},
        )
        db.session.commit()
        scope = str(account.public_id)
        db.session.remove()
        db.engine.dispose()
        assert b"legacy-cust-4711" in raw_file(path)  # what must not survive

        upgrade(revision="b12e0e5f0002")
        row = db.session.scalar(select(Subject))
        assert row.external_ref == "legacy-cust-4711"
        expected = scratch.extensions["blind_index"](scope, "external_ref:legacy-cust-4711")
        assert row.external_ref_index == expected
        assert db.session.execute(text("SELECT customer_index FROM dsr_requests")).scalar() == (
            expected
        )
        db.session.remove()
        db.engine.dispose()
        assert b"legacy-cust-4711" not in raw_file(path)  # the old bytes are overwritten

        downgrade(revision="9e3b5c7a1d42")
        assert db.session.execute(text("SELECT external_ref FROM subjects")).scalar() == (
            "legacy-cust-4711"
        )
        db.session.remove()
        db.engine.dispose()
