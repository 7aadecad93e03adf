"""Access and portability packages, and erasure receipts: JSON (with a published schema)
and PDF, encrypted with the data keys before they reach object storage; and the worker's
delivery of a package (`deliver`). Receipts are written by the erasure (privacy.dsr.erasure).
"""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import resources

from flask import current_app

from privacy import pdf
from privacy import storage
from privacy.accounts.models import Account
from privacy.database import utcnow
from privacy.dsr import notices
from privacy.dsr import results
from privacy.dsr import services
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db
from privacy.inventory.models import Subject
from privacy.processors import notices as subprocessor_notices
from privacy.processors import rules as transfers

SCHEMA_NAME = "access-package.schema.json"
# 2: `subjects` lists every record held about the person (one customer id may name
# several), each with the systems holding it; 1 had one `subject` and its `systems`.
FORMAT = "privacy-access-package/2"
BACKUP_POLICY = (
    "Backups are taken daily, encrypted, and kept 30 days; every backup is deleted within "
    "90 days at the latest. Data erased on request remains only in those encrypted backups, "
    "beyond use, and is erased again if a backup is ever restored."
)
RIGHTS = [
    "access (Art. 15)",
    "rectification (Art. 16)",
    "erasure (Art. 17)",
    "restriction of processing (Art. 18)",
    "data portability (Art. 20)",
    "objection (Art. 21)",
]


def schema() -> dict:
    return json.loads(resources.files("privacy.dsr").joinpath(SCHEMA_NAME).read_text())


def _systems(subjects: list[Subject]) -> list:
    """The systems holding any of the records, once each, in the inventory's order."""
    held = {system.id: system for subject in subjects for system in subject.systems}
    return [system for _, system in sorted(held.items())]


def _recipients(account: Account, subjects: list[Subject]) -> list[dict]:
    """Art. 15(1)(c) and 15(2): the controller's systems holding the person's data, as its
    inventory records them, then the platform's sub-processors effective for the account,
    one entry per location with the transfer's safeguard from the register."""
    systems = _systems(subjects)
    recipients = [
        {"name": s.name, "kind": s.kind, "location": s.region.upper(), "safeguard": None}
        for s in systems
    ]
    today = utcnow().date()
    for sp in subprocessor_notices.effective_for(account):
        for country in sp.locations:
            transfer = transfers.transfer(sp, country, today)
            recipients.append(
                {
                    "name": sp.legal_name,
                    "kind": f"sub-processor: {sp.purpose}",
                    "location": f"{transfers.country_name(country)} ({country})",
                    "safeguard": transfer.detail,
                }
            )
    return recipients


def _art15(account: Account, subjects: list[Subject]) -> dict:
    """What Art. 15(1) asks for; recipients from the inventory and the sub-processor register."""
    return {
        "controller": account.name,
        "purposes": [
            f"Providing {account.name}'s service to you, on {account.name}'s instructions "
            "(the platform processes your data as a processor, Art. 28 GDPR)."
        ],
        "categories": ["identification data: name", "contact data: e-mail address"],
        "recipients": _recipients(account, subjects),
        "retention": (
            "Kept while you are a user of the service or until the controller has it erased. "
            + BACKUP_POLICY
        ),
        "source": "; ".join(_sources(subjects)) or "the controller",
        "rights": RIGHTS,
        "complaint": services.COMPLAINT,
        "automated_decisions": "None.",
    }


def _sources(subjects: list[Subject]) -> list[str]:
    return list(dict.fromkeys(s.source for s in subjects if s.source))


def build_access(account: Account, request: DataSubjectRequest, subjects: list[Subject]) -> dict:
    """The package: every record in `subjects` (all those the request names), with the
    systems holding each, the request history and the Art. 15(1) information."""
    history = services.history_for(account, request)
    document = {
        "format": FORMAT,
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "account": {"id": str(account.public_id), "name": account.name},
        "request": {
            "id": str(request.public_id),
            "subject_request_id": str(request.subject_request_id),
            "type": request.kind,
            "received_at": request.received_at.isoformat(timespec="seconds"),
        },
        "data_held": bool(subjects),
        "subjects": [
            {
                "id": str(subject.public_id),
                "name": subject.name,
                "email": subject.email,
                "external_ref": subject.external_ref,
                "source": subject.source,
                "created_at": subject.created_at.isoformat(timespec="seconds"),
                "updated_at": subject.updated_at.isoformat(timespec="seconds"),
                "systems": [
                    {"id": str(s.public_id), "name": s.name, "kind": s.kind, "region": s.region}
                    for s in subject.systems
                ],
            }
            for subject in subjects
        ],
        "requests": [
            {
                "id": str(r.public_id),
                "type": r.kind,
                "status": r.status,
                "received_at": r.received_at.isoformat(timespec="seconds"),
                "completed_at": r.completed_at.isoformat(timespec="seconds")
                if r.completed_at
                else None,
            }
            for r in history
        ],
        "information": _art15(account, subjects),
    }
    _check(document)  # never deliver a package that breaks its schema
    return document


def _check(document: dict) -> None:
    # jsonschema is imported by the worker's first package, not when the app starts.
    import jsonschema

    jsonschema.validate(document, schema())


def build_receipt(
    account: Account, request: DataSubjectRequest, instructions: list | None = None
) -> dict:
    """The receipt; `instructions` (default: the request's) may hold planned ones."""
    if instructions is None:
        instructions = request.instructions
    erased_at = request.ledger_at or request.completed_at or utcnow()
    return {
        "format": "privacy-erasure-receipt/1",
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "account": {"id": str(account.public_id), "name": account.name},
        "request": {
            "id": str(request.public_id),
            "subject_request_id": str(request.subject_request_id),
            "received_at": request.received_at.isoformat(timespec="seconds"),
        },
        "data_held": not request.no_data_held,
        "erased": [{"store": "privacy inventory", "what": "name, e-mail, references, system links"}]
        if not request.no_data_held
        else [],
        "instructions": [
            {
                "id": str(i.public_id),
                "target": i.target_name,
                "kind": i.target_kind,
                "region": i.region,
                "state": i.state,
                "confirmed_at": i.confirmed_at.isoformat(timespec="seconds")
                if i.confirmed_at
                else None,
            }
            for i in instructions
        ],
        "backups": (
            "The data remains only in encrypted backups, beyond use, and is purged with them by "
            + (erased_at + timedelta(days=90)).date().isoformat()
            + "; a restored backup is corrected from the erasure ledger before use."
        )
        if not request.no_data_held
        else None,
    }


ACCESS_FILES = ("access.json", "access.pdf")
RECEIPT_COUNT = 2  # receipt.json, and receipt.pdf rendered from it on the first download


def prefix_for(account: Account, request: DataSubjectRequest) -> str:
    """Where a request's documents live: under the account's prefix."""
    return f"accounts/{account.public_id}/requests/{request.public_id}/"


def put(prefix: str, name: str, data: bytes) -> str:
    """Encrypt with the data keys (the key bound to the object's name) and put; returns the
    key. Touches no database row, so it can run outside a transaction."""
    ring = current_app.extensions["keyring"]
    aad = f"{prefix}{name}".encode()
    blob = ring.current_id.encode() + b"\n" + ring.encrypt_bytes(data, aad)
    storage.get().put(prefix + name + ".enc", blob, content_type="application/octet-stream")
    return prefix + name


def remove(prefix: str, *names: str) -> None:
    """Delete documents put() under `prefix` (those of a request refused while being made)."""
    for name in names:
        storage.get().delete(prefix + name + ".enc")


def store(account: Account, request: DataSubjectRequest, name: str, data: bytes, content_type: str):
    """Encrypt with the data keys and put under the account's prefix; returns the key."""
    prefix = prefix_for(account, request)
    key = put(prefix, name, data)
    request.results_prefix = prefix
    return key


def load(request: DataSubjectRequest, name: str) -> bytes:
    ring = current_app.extensions["keyring"]
    prefix = request.results_prefix
    blob = storage.get().get(prefix + name + ".enc")
    key_id, _, ciphertext = blob.partition(b"\n")
    return ring.decrypt_bytes(ciphertext, key_id.decode(), f"{prefix}{name}".encode())


def write_access(account: Account, request: DataSubjectRequest, subjects: list[Subject]) -> int:
    """Build, render and store the package under prefix_for(); returns the number of files.
    Only reads the database: the caller records the prefix and the count."""
    document = build_access(account, request, subjects)
    prefix = prefix_for(account, request)
    text = json.dumps(document, ensure_ascii=False, indent=2).encode()
    put(prefix, "access.json", text)
    rendered = pdf.render_pdf("dsr/access.html", doc=document)
    put(prefix, "access.pdf", rendered)
    return len(ACCESS_FILES)


def receipt_bytes(
    account: Account, request: DataSubjectRequest, instructions: list | None = None
) -> bytes:
    """The receipt's JSON. Its PDF is rendered from it on the first download (an erasure
    must not wait for a PDF few will open: that would cap erasures at a few a second)."""
    document = build_receipt(account, request, instructions)
    return json.dumps(document, ensure_ascii=False, indent=2).encode()


def write_receipt(account: Account, request: DataSubjectRequest) -> int:
    """Store the receipt's JSON; returns the number of documents it offers."""
    store(account, request, "receipt.json", receipt_bytes(account, request), "application/json")
    return RECEIPT_COUNT


def load_or_render(account: Account, request: DataSubjectRequest, name: str) -> bytes:
    """A stored document; the receipt PDF is rendered from the stored JSON and kept."""
    if name == "receipt.pdf" and not storage.get().exists(request.results_prefix + name + ".enc"):
        document = json.loads(load(request, "receipt.json"))
        rendered = pdf.render_pdf("dsr/receipt.html", doc=document)
        store(account, request, name, rendered, "application/pdf")
        return rendered
    return load(request, name)


def deliver(account: Account, request: DataSubjectRequest, *, actor: str) -> str:
    """Verified (or interrupted in-progress) access or portability request -> completed,
    for the task "dsr.process", whose transaction holds the request's lock: returns the
    request's status then. Safe to run twice, at once or after a crash.

    The move to in_progress is committed first; the package is collected and rendered in a
    read-only transaction, then the request is locked again and completed (its link, the
    status, the notice), unless it was rejected meanwhile (the documents are removed).
    """
    request_id = request.id
    if request.status == "verified":
        services.transition(account, request, "in_progress", actor=actor)
        db.session.commit()
    else:
        db.session.rollback()
    request = db.session.get(DataSubjectRequest, request_id, populate_existing=True)
    account = db.session.get(Account, request.account_id)
    subjects = services.find_subjects(account, request)
    subject_ref = subjects[0].public_id if subjects else None
    prefix = prefix_for(account, request)
    count = write_access(account, request, subjects)
    db.session.rollback()  # ends the read-only transaction: nothing in it is kept

    request = services.lock(request_id)
    if request is None or request.status != "in_progress":
        # Rejected while we rendered (nothing to deliver), or completed by another run
        # (whose package this one replaced with the same content).
        status = request.status if request is not None else "gone"
        db.session.rollback()
        if status != "completed":
            remove(prefix, *ACCESS_FILES)
        return status
    account = db.session.get(Account, request.account_id)
    request.no_data_held = subject_ref is None
    request.subject_ref = subject_ref
    request.results_prefix = prefix
    request.results_count = count
    url = results.issue_link(request)
    services.transition(account, request, "completed", actor=actor)
    notices.completed(account, request, url)
    db.session.commit()
    return "completed"
