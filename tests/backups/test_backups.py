"""Backups on the embedded default (SQLite, local files): the format, failures, retention,
restore with erasure replay, drills, and the promise itself."""

from __future__ import annotations

import io
import json
import os
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text

from privacy import create_app
from privacy import database
from privacy.audit import services as audit
from privacy.backups import services
from privacy.backups import stream
from privacy.database import utcnow
from privacy.extensions import db
from privacy.inventory import services as inventory
from tests.conftest import app_config
from tests.conftest import make_tenant

KEY = "b1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="  # 32 bytes of "A"
OTHER_KEY = "b2:" + "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="


@pytest.fixture
def embedded(tmp_path):
    """An app of its own on a SQLite file, with local storage and a local backup location."""
    app = create_app(
        app_config(
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'live.sqlite3'}",
            STORAGE_URL=f"file://{tmp_path / 'storage'}",
            BACKUP_URL=f"file://{tmp_path / 'backups'}",
            BACKUP_KEYS=KEY,
        )
    )
    from flask_migrate import upgrade

    database.init_migrations(app)
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


def add_subject(account, name, email):
    subject = inventory.create_subject(account, name=name, email=email, actor="t")
    db.session.commit()
    return subject


def emails(url) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM subjects")).scalar_one()
    engine.dispose()
    return rows


# -- the format --------------------------------------------------------------------------


def test_the_stream_round_trips_and_refuses_tampering_truncation_and_wrong_keys():
    keys = {"b1": b"A" * 32}
    plain = [os.urandom(700_000) for _ in range(5)]
    sealed = b"".join(stream.encrypt(plain, key_id="b1", wrapping_key=keys["b1"]))

    assert b"".join(stream.decrypt(io.BytesIO(sealed), keys)) == b"".join(plain)
    for broken, message in [
        (sealed[:-10], "truncated|altered"),  # cut inside the last frame
        (sealed[: len(sealed) // 2], "truncated|altered"),
        (sealed[:200] + bytes([sealed[200] ^ 1]) + sealed[201:], "altered"),
        (b"PK\x03\x04" + sealed[4:], "not a backup"),
    ]:
        with pytest.raises(stream.BackupCorrupt, match=message):
            b"".join(stream.decrypt(io.BytesIO(broken), keys))
    whole_frames = b"".join(list(stream.encrypt(plain, key_id="b1", wrapping_key=keys["b1"]))[:-1])
    with pytest.raises(stream.BackupCorrupt, match="truncated"):  # the flagged last frame is gone
        b"".join(stream.decrypt(io.BytesIO(whole_frames), keys))
    with pytest.raises(stream.BackupCorrupt, match="not configured"):
        b"".join(stream.decrypt(io.BytesIO(sealed), {"b9": b"B" * 32}))
    with pytest.raises(stream.BackupCorrupt, match="wrong key"):
        b"".join(stream.decrypt(io.BytesIO(sealed), {"b1": b"B" * 32}))


# -- backup ------------------------------------------------------------------------------


def test_a_backup_is_encrypted_with_a_manifest_beside_it(embedded):
    tenant = make_tenant()
    add_subject(tenant.account, "Zofia Wiśniewska", "zofia@example.pl")

    run = services.run_backup(trigger="cli", actor=audit.SYSTEM)

    assert run.status == "succeeded" and run.key_id == "b1"
    store = services.location()
    blob = store.get(f"backups/{run.key}.bak")
    assert b"zofia" not in blob and b"subjects" not in blob
    manifest = json.loads(store.get(f"backups/{run.key}.json"))
    assert manifest["size"] == len(blob) and manifest["key_id"] == "b1"
    assert manifest["row_counts"]["subjects"] == 1 and manifest["row_counts"]["accounts"] == 1
    assert manifest["database"] == "sqlite" and manifest["revision"]
    assert [m.id for m in services.manifests()] == [run.key]


def test_a_failed_backup_leaves_nothing_that_looks_valid(embedded, monkeypatch):
    make_tenant()
    real_encrypt = stream.encrypt

    def dies(chunks, **kwargs):
        yield from real_encrypt(iter([b"x" * 3_000_000]), **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stream, "encrypt", dies)
    run = services.run_backup(trigger="cli", actor=audit.SYSTEM)

    assert run.status == "failed" and run.reason == "The disk is full."
    assert services.manifests() == []
    assert list(services.location().list("backups/")) == []


def test_a_wrong_key_or_an_unreachable_store_fails_with_a_clear_reason(embedded, monkeypatch):
    monkeypatch.setitem(embedded.config, "BACKUP_KEYS", "b1:short")
    assert "PRIVACY_BACKUP_KEYS" in services.run_backup(actor=audit.SYSTEM).reason
    monkeypatch.setitem(embedded.config, "BACKUP_KEYS", KEY)
    monkeypatch.setitem(embedded.config, "BACKUP_URL", "s3://no-such-bucket/x")
    monkeypatch.setitem(embedded.config, "S3_ENDPOINT_URL", "http://127.0.0.1:9")
    failed = services.run_backup(actor=audit.SYSTEM)
    assert failed.status == "failed" and failed.reason


# -- retention ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "age_days,kept,violation",
    [(29, True, False), (31, False, True), (89, False, True), (91, False, True)],
)
def test_retention_with_a_frozen_clock(embedded, age_days, kept, violation):
    run = services.run_backup(actor=audit.SYSTEM)
    now = services.find(run.key).created_at + timedelta(days=age_days)

    report = services.enforce_retention(now, dry_run=True)
    assert bool(report.violations) == violation
    if age_days > 90:
        assert "over 90" in report.violations[0]
    services.enforce_retention(now)
    assert bool(services.manifests()) == kept
    assert services.enforce_retention(now, dry_run=True).violations == []


def test_the_lifecycle_rules_purge_after_90_days(embedded, monkeypatch):
    monkeypatch.setitem(embedded.config, "BACKUP_URL", "s3://privacy-backups/prod")
    (rule,) = services.lifecycle_rules()["Rules"]
    assert rule["Expiration"] == {"Days": 90} and rule["Filter"] == {"Prefix": "prod/backups/"}


# -- restore and the promise -------------------------------------------------------------


def test_erased_subjects_never_come_back_but_ordinary_deletions_do(
    embedded, client_for, tmp_path, queue
):
    tenant = make_tenant()
    crm = inventory.create_system(
        tenant.account, name="Loyalty cards", kind="crm", region="eu", actor="t"
    )
    erik = inventory.create_subject(
        tenant.account,
        name="Erik Erased",
        email="erik@example.se",
        systems=[crm.public_id],
        actor="t",
    )
    db.session.commit()
    erik_id = erik.id
    kept = add_subject(tenant.account, "Karin Kept", "karin@example.se")
    run = services.run_backup(actor=audit.SYSTEM)

    client = client_for(embedded)
    body = {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": "erasure",
        "submitted_time": utcnow().isoformat(),
        "subject_identities": [{"identity_type": "email", "identity_value": "erik@example.se"}],
    }
    assert client.post("/opendsr/v1/requests", json=body, headers=tenant.headers).status_code == 201
    queue.run()  # the worker erases
    inventory.delete_subject(tenant.account, kept, actor="t")
    db.session.commit()

    target = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    result = services.restore(run.key, target=target, actor="cli")

    assert result["replayed_erasures"] == 1
    engine = create_engine(target)
    with engine.connect() as connection:
        names = connection.execute(text("SELECT count(*) FROM subjects")).scalar_one()
    engine.dispose()
    assert names == 1  # Karin is back, Erik is not
    # ...and neither are his rows in other tables: the replay's delete cascades on the
    # restored SQLite file as in the service (foreign keys on).
    engine = create_engine(target)
    with engine.connect() as connection:
        holdings = connection.execute(
            text("SELECT count(*) FROM holdings WHERE subject_id = :id"), {"id": erik_id}
        ).scalar_one()
    engine.dispose()
    assert holdings == 0
    restored = create_app(app_config(SQLALCHEMY_DATABASE_URI=target))
    with restored.app_context():
        from privacy.inventory.models import Subject

        (subject,) = db.session.scalars(db.select(Subject)).all()
        assert subject.email == "karin@example.se"
        db.session.remove()
        db.engine.dispose()


def test_restore_refuses_a_non_empty_target_a_missing_id_and_an_unreadable_ledger(
    embedded, tmp_path
):
    make_tenant()
    run = services.run_backup(actor=audit.SYSTEM)
    target = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    services.restore(run.key, target=target, actor="cli")

    with pytest.raises(services.BackupError, match="not empty"):
        services.restore(run.key, target=target, actor="cli")
    services.restore(run.key, target=target, force=True, actor="cli")
    with pytest.raises(services.BackupError, match="no backup with id"):
        services.restore("20990101T000000Z-000000", target=target, force=True, actor="cli")

    from privacy import storage

    storage.get().put("erasure-ledger/20990101T000000.000000Z-x.json", b"not json")
    other = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    with pytest.raises(Exception, match="ledger"):
        services.restore(run.key, target=other, actor="cli")
    assert not os.path.exists(tmp_path / "other.sqlite3")  # nothing restored without the ledger


def test_a_tampered_backup_fails_its_checksum(embedded, tmp_path):
    make_tenant()
    run = services.run_backup(actor=audit.SYSTEM)
    store = services.location()
    blob = bytearray(store.get(f"backups/{run.key}.bak"))
    blob[-5] ^= 1
    store.put(f"backups/{run.key}.bak", bytes(blob))
    with pytest.raises(services.BackupError, match="checksum"):
        services.restore(run.key, target=f"sqlite:///{tmp_path / 'r.sqlite3'}", actor="cli")


def test_a_drill_restores_checks_and_reports(embedded, client_for, queue):
    tenant = make_tenant()
    add_subject(tenant.account, "Erik Erased", "erik@example.se")
    services.run_backup(actor=audit.SYSTEM)
    client = client_for(embedded)
    body = {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": "erasure",
        "submitted_time": utcnow().isoformat(),
        "subject_identities": [{"identity_type": "email", "identity_value": "erik@example.se"}],
    }
    client.post("/opendsr/v1/requests", json=body, headers=tenant.headers)
    queue.run()

    report = services.drill(actor=audit.SYSTEM)

    assert report.status == "passed", report.checks
    checks = {c["check"]: c for c in report.checks}
    assert checks["rows in subjects"]["actual"] == 1
    assert checks["erasures replayed"]["count"] == 1
    assert checks["no erased subject present"]["found"] == 0
    assert report.duration_seconds > 0


def test_a_drill_without_backups_fails_with_the_reason(embedded):
    report = services.drill(actor=audit.SYSTEM)
    assert report.status == "failed" and "no backup" in report.checks[-1]["reason"]


@pytest.fixture
def client_for():
    return lambda app: app.test_client()
