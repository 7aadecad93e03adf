"""Erasure: the ledger first, every store, Art. 19 instructions, crash-safety, the receipt,
and replay after a restore."""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy import select

from privacy import storage
from privacy.audit import services as audit
from privacy.audit.models import AuditEvent
from privacy.database import utcnow
from privacy.dsr import erasure
from privacy.dsr import ledger
from privacy.dsr import package
from privacy.dsr import results
from privacy.dsr import services
from privacy.dsr import tasks
from privacy.extensions import db
from privacy.inventory import services as inventory
from privacy.inventory.models import Holding
from privacy.inventory.models import Subject
from tests.inventory.test_encryption import raw_database_bytes

# A controller's receipt time the OpenDSR API takes: recent (at most 92 days ago).
RECENT = (datetime.now(UTC) - timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")

EMAIL = "erik.nordstrom@example.se"


def erase(client, tenant, email: str = EMAIL, *, queue=None):
    """An OpenDSR erasure request; with `queue`, the worker then works it."""
    sent = {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": "erasure",
        "submitted_time": RECENT,
        "subject_identities": [{"identity_type": "email", "identity_value": email}],
    }
    assert client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers).status_code == 201
    if queue is not None:
        queue.run()
    return services.get_by_subject_request_id(tenant.account, uuid.UUID(sent["subject_request_id"]))


@pytest.fixture
def held(tenant):
    crm = inventory.create_system(tenant.account, name="CRM", kind="crm", region="eu", actor="t")
    mailer = inventory.create_system(
        tenant.account, name="Mailer", kind="email_provider", region="us", actor="t"
    )
    subject = inventory.create_subject(
        tenant.account,
        name="Erik Nordström",
        email=EMAIL,
        systems=[crm.public_id, mailer.public_id],
        actor="t",
    )
    db.session.commit()
    return subject


def audit_events(tenant) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.account_ref == str(tenant.account.public_id))
            .order_by(AuditEvent.seq)
        )
    )


def subjects(tenant) -> list[str]:
    db.session.commit()  # a task commits in its own session: end ours to see it
    return [
        s.email
        for s in db.session.scalars(select(Subject).where(Subject.account_id == tenant.account.id))
    ]


def test_erasure_removes_the_subject_everywhere_and_instructs_each_system(
    client, tenant, held, queue
):
    request = erase(client, tenant, queue=queue)

    assert request.status == "completed" and not request.no_data_held
    assert subjects(tenant) == []
    assert db.session.scalars(select(Holding)).all() == []
    assert [(i.target_name, i.state) for i in request.instructions] == [
        ("CRM", "pending"),
        ("Mailer", "pending"),
    ]
    receipt = json.loads(package.load(request, "receipt.json"))
    assert receipt["data_held"] is True
    assert [i["target"] for i in receipt["instructions"]] == ["CRM", "Mailer"]
    purge = (request.ledger_at + timedelta(days=90)).date().isoformat()
    assert "encrypted backups" in receipt["backups"] and purge in receipt["backups"]


def test_the_ledger_entry_holds_no_plaintext(client, tenant, held, queue):
    request = erase(client, tenant, queue=queue)

    keys = [k for k in storage.get().list(ledger.PREFIX)]
    assert len(keys) == 1 and str(request.public_id) in keys[0]
    raw = storage.get().get(keys[0]).decode()
    assert EMAIL not in raw and "Erik" not in raw and inventory.email_hash(EMAIL) not in raw
    entry = json.loads(raw)
    assert entry["index"] == inventory.hash_index(tenant.account, inventory.email_hash(EMAIL))
    assert entry["account"] == str(tenant.account.public_id)


def test_no_data_held_completes_with_a_receipt_saying_so(client, tenant, queue):
    request = erase(client, tenant, "nobody@example.org", queue=queue)

    assert request.status == "completed" and request.no_data_held
    receipt = json.loads(package.load(request, "receipt.json"))
    assert receipt["data_held"] is False and receipt["erased"] == []
    assert list(storage.get().list(ledger.PREFIX))  # the erasure is on record all the same


def test_a_worker_killed_midway_leaves_a_request_that_completes_on_the_next_run(
    client, tenant, held, monkeypatch
):
    real_delete = db.session.delete
    calls = {"n": 0}

    def dies_once(obj):
        calls["n"] += 1
        if calls["n"] == 1:
            raise SystemExit("worker killed")  # after the ledger entry, before the delete
        return real_delete(obj)

    monkeypatch.setattr(db.session, "delete", dies_once)
    request = erase(client, tenant)
    with pytest.raises(SystemExit):
        tasks.process(request.id)
    db.session.rollback()
    request = services.get(tenant.account, request.public_id)
    assert request.status == "in_progress"  # not reported done
    assert request.ledger_at is not None and subjects(tenant) == [EMAIL]

    # Until the dead worker's claim runs out, another delivery leaves the request to it ...
    assert tasks.process(request.id) == "claimed"
    assert subjects(tenant) == [EMAIL]
    # ... then the next run (the sweep's, or the redelivered task) finishes it.
    later = utcnow() + erasure.CLAIM + timedelta(seconds=1)
    monkeypatch.setattr(services, "utcnow", lambda: later)
    assert tasks.process(request.id) == "completed"
    assert subjects(tenant) == []
    assert len(list(storage.get().list(ledger.PREFIX))) == 1  # the same entry, not a second
    assert tasks.process(request.id) == "completed"  # and a third run changes nothing
    db.session.commit()
    assert len(services.get(tenant.account, request.public_id).instructions) == 2


def test_a_storage_failure_gives_the_claims_back_so_the_retry_erases_at_once(
    client, tenant, held, monkeypatch
):
    real_put = package.put
    calls = {"n": 0}

    def fails_once(*args):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("object storage unreachable")
        return real_put(*args)

    monkeypatch.setattr(package, "put", fails_once)
    request = erase(client, tenant)
    with pytest.raises(OSError):
        tasks.process(request.id)  # called directly, Celery's retry raises the error
    db.session.commit()
    request = services.get(tenant.account, request.public_id)
    assert request.status == "in_progress" and request.claimed_until is None
    assert subjects(tenant) == [EMAIL]  # nothing deleted

    assert tasks.process(request.id) == "completed"  # the retry, without waiting
    assert subjects(tenant) == []


def test_one_task_erases_a_batch_of_waiting_requests_and_the_others_find_them_done(
    client, tenant, monkeypatch
):
    crm = inventory.create_system(tenant.account, name="CRM", kind="crm", region="eu", actor="t")
    emails = [f"person{n}@example.org" for n in range(5)]
    for email in emails:
        inventory.create_subject(
            tenant.account, name="Someone", email=email, systems=[crm.public_id], actor="t"
        )
    db.session.commit()
    # Two requests for the same person, one for no one: each still gets its own answer.
    requests = [erase(client, tenant, email) for email in [*emails, emails[0], "no@example.org"]]
    assert {r.status for r in requests} == {"verified"}

    assert tasks.process(requests[1].id) == "completed"
    db.session.commit()
    statuses = [services.get(tenant.account, r.public_id).status for r in requests]
    # The same person twice in one batch: the second waits for its own task.
    assert statuses == ["completed"] * 5 + ["verified", "completed"]
    assert subjects(tenant) == []
    assert len(list(storage.get().list(ledger.PREFIX))) == 6
    assert tasks.process(requests[0].id) == "completed"  # its own task: nothing left to do
    assert tasks.process(requests[5].id) == "completed"
    db.session.commit()
    twice = services.get(tenant.account, requests[5].public_id)
    assert twice.no_data_held and twice.instructions == []
    for request in requests[:5]:
        request = services.get(tenant.account, request.public_id)
        assert not request.no_data_held and [i.target_name for i in request.instructions] == ["CRM"]
        receipt = json.loads(package.load(request, "receipt.json"))
        assert receipt["data_held"] is True and len(receipt["instructions"]) == 1
    chain = [
        e.action
        for e in audit_events(tenant)
        if e.action in ("subject.erased", "dsr.in_progress", "dsr.completed")
    ]
    assert chain.count("subject.erased") == 5 and chain.count("dsr.completed") == 7
    assert list(audit.verify()) == []


def test_replaying_the_ledger_after_a_restore_erases_again(client, tenant, held, queue):
    other = inventory.create_subject(
        tenant.account, name="Kept Person", email="kept@example.org", actor="t"
    )
    db.session.commit()
    # The "backup": every subject and holding row, as a restore would bring them back.
    snapshot_at = utcnow()
    subject_rows = [dict(r._mapping) for r in db.session.execute(select(Subject.__table__))]
    holding_rows = [dict(r._mapping) for r in db.session.execute(select(Holding.__table__))]

    erase(client, tenant, queue=queue)
    inventory.delete_subject(tenant.account, db.session.get(Subject, other.id), actor="t")
    db.session.commit()
    assert subjects(tenant) == []

    db.session.execute(insert(Subject.__table__), subject_rows)  # the restore
    db.session.execute(insert(Holding.__table__), holding_rows)
    db.session.commit()
    assert sorted(subjects(tenant)) == [EMAIL, "kept@example.org"]

    assert ledger.replay_erasures(since=snapshot_at) == 1
    assert subjects(tenant) == ["kept@example.org"]  # deleted the ordinary way: back; erased: not
    assert ledger.replay_erasures(since=snapshot_at) == 0


def test_replay_refuses_to_guess_when_the_ledger_cannot_be_read(client, tenant, held, queue):
    erase(client, tenant, queue=queue)
    key = next(iter(storage.get().list(ledger.PREFIX)))
    storage.get().put(key, b"not json")
    with pytest.raises(ledger.LedgerUnreadable):
        ledger.replay_erasures()


def test_an_erasure_found_by_customer_id_is_ledgered_by_the_subjects_email(
    client, tenant, held, queue
):
    held.external_ref = "cust-9"
    db.session.commit()
    sent = {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": "erasure",
        "submitted_time": RECENT,
        "subject_identities": [
            {"identity_type": "controller_customer_id", "identity_value": "cust-9"}
        ],
    }
    client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers)
    queue.run()

    entry = next(ledger.entries())
    assert entry.index == inventory.hash_index(tenant.account, inventory.email_hash(EMAIL))
    assert subjects(tenant) == []


def test_instructions_are_confirmed_once(client, tenant, held, queue):
    request = erase(client, tenant, queue=queue)
    first = request.instructions[0]

    erasure.confirm_instruction(tenant.account, request, first.public_id, actor="member:x")
    db.session.commit()
    assert first.state == "confirmed" and first.confirmed_at is not None
    with pytest.raises(Exception, match="already"):
        erasure.confirm_instruction(tenant.account, request, first.public_id, actor="member:x")


def test_the_receipt_pdf_is_rendered_on_first_download_and_kept(client, tenant, held, queue):
    request = erase(client, tenant, queue=queue)
    path = "/" + results.url_of(request).split("://", 1)[1].split("/", 1)[1]
    key = request.results_prefix + "receipt.pdf.enc"
    assert not storage.get().exists(key)

    first = client.get(path + "/receipt.pdf")
    assert first.status_code == 200 and first.data.startswith(b"%PDF")
    assert storage.get().exists(key)
    assert client.get(path + "/receipt.pdf").data == first.data


# -- one customer id, several records ------------------------------------------------------


def erase_customer(client, tenant, customer_id: str, queue):
    sent = {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": "erasure",
        "submitted_time": RECENT,
        "subject_identities": [
            {"identity_type": "controller_customer_id", "identity_value": customer_id}
        ],
    }
    assert client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers).status_code == 201
    queue.run()
    return services.get_by_subject_request_id(tenant.account, uuid.UUID(sent["subject_request_id"]))


@pytest.fixture
def shared(tenant):
    """Three records of one customer id (in different systems) and one of another; returns
    the three's public ids and e-mails."""
    systems = [
        inventory.create_system(tenant.account, name=name, kind="crm", region="eu", actor="t")
        for name in ("CRM", "Shop", "Helpdesk")
    ]
    records = [
        inventory.create_subject(
            tenant.account,
            name=f"Record {n}",
            email=f"record{n}@example.org",
            external_ref="cust-3",
            systems=[systems[n].public_id, systems[0].public_id],
            actor="t",
        )
        for n in range(3)
    ]
    inventory.create_subject(
        tenant.account, name="Other", email="other@example.org", external_ref="cust-4", actor="t"
    )
    db.session.commit()
    return {str(s.public_id): s.email for s in records}


def test_an_erasure_by_customer_id_erases_every_record_of_that_id(client, tenant, shared, queue):
    request = erase_customer(client, tenant, "cust-3", queue)

    assert request.status == "completed" and not request.no_data_held
    assert subjects(tenant) == ["other@example.org"]
    # Art. 19: every system that held any of them, once each.
    assert [i.target_name for i in request.instructions] == ["CRM", "Shop", "Helpdesk"]
    entries = sorted(ledger.entries(), key=lambda e: e.subject)
    assert sorted(e.subject for e in entries) == sorted(shared)
    for entry in entries:
        email = shared[entry.subject]
        assert entry.index == inventory.hash_index(tenant.account, inventory.email_hash(email))
        assert entry.ref_index == inventory.customer_index(tenant.account, "cust-3")
        assert entry.request == str(request.public_id)
    erased = [e.object_id for e in audit_events(tenant) if e.action == "subject.erased"]
    assert sorted(erased) == sorted(shared)
    receipt = json.loads(package.load(request, "receipt.json"))
    assert [i["target"] for i in receipt["instructions"]] == ["CRM", "Shop", "Helpdesk"]


def test_the_customer_id_is_gone_after_the_erasure(client, tenant, shared, queue):
    request = erase_customer(client, tenant, "cust-3", queue)

    index = inventory.customer_index(tenant.account, "cust-3")
    assert request.customer_index == index  # the request keeps the keyed index only
    assert (
        db.session.scalars(select(Subject).where(Subject.external_ref_index == index)).all() == []
    )
    raw = storage.get().get(next(iter(storage.get().list(ledger.PREFIX))))
    assert b"cust-3" not in raw
    assert b"cust-3" not in raw_database_bytes()


def test_replaying_an_erasure_by_customer_id_erases_every_restored_record(
    client, tenant, shared, queue
):
    snapshot_at = utcnow()
    subject_rows = [dict(r._mapping) for r in db.session.execute(select(Subject.__table__))]
    erase_customer(client, tenant, "cust-3", queue)
    db.session.execute(insert(Subject.__table__), subject_rows[:3])  # the restore
    db.session.commit()

    assert ledger.replay_erasures(since=snapshot_at) == 3
    assert subjects(tenant) == ["other@example.org"]


def test_an_erasure_by_a_customer_id_held_nowhere_is_still_ledgered_by_it(client, tenant, queue):
    """No record carries it now, but an older backup may: a restore must erase it too."""
    snapshot_at = utcnow()
    restored = inventory.create_subject(
        tenant.account, name="Gone", email="gone@example.org", external_ref="cust-8", actor="t"
    )
    db.session.commit()
    row = dict(db.session.execute(select(Subject.__table__)).one()._mapping)
    inventory.delete_subject(tenant.account, restored, actor="t")  # an ordinary deletion
    db.session.commit()

    request = erase_customer(client, tenant, "cust-8", queue)
    assert request.no_data_held
    (entry,) = ledger.entries()
    assert entry.index is None and entry.subject is None
    assert entry.ref_index == inventory.customer_index(tenant.account, "cust-8")

    db.session.execute(insert(Subject.__table__), [row])  # a restore of an older backup
    db.session.commit()
    assert ledger.replay_erasures(since=snapshot_at) == 1
    assert subjects(tenant) == []
