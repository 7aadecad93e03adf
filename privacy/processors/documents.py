"""The account's contract documents from the register: the DPA annex (list of sub-processors)
and the Art. 30(2) record of processing, as JSON-ready dicts and as PDF, and the audit of
their downloads."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import OrderedDict
from datetime import date
from datetime import datetime

from flask import current_app

from privacy import pdf
from privacy.accounts.models import Account
from privacy.accounts.models import Member
from privacy.audit import services as audit
from privacy.database import for_account
from privacy.database import utcnow
from privacy.extensions import db
from privacy.processors import notices
from privacy.processors import rules
from privacy.processors.models import SubProcessor

ANNEX_FORMAT = "privacy-subprocessor-annex/1"
RECORD_FORMAT = "privacy-record-of-processing/1"

# What the platform does for every controller (Art. 30(2)(b)); the domains of this service.
CATEGORIES_OF_PROCESSING: list[dict] = [
    {
        "name": "Inventory of data subjects",
        "description": "Storing the controller's data subjects and the systems that hold "
        "their data, so requests can be answered and erasures passed on.",
        "data_categories": [
            "identification data: name",
            "contact data: e-mail address",
            "the controller's customer reference and the source of the data",
        ],
        "subject_categories": ["the controller's customers, users and contacts"],
    },
    {
        "name": "Data-subject requests",
        "description": "Receiving, verifying and answering requests for access, portability "
        "and erasure (Art. 15, 17, 20 GDPR), by the public form and OpenDSR; access packages "
        "and erasure receipts; erasure instructions to the controller's systems (Art. 19).",
        "data_categories": [
            "identification and contact data of the requester",
            "the request, its messages and its outcome",
        ],
        "subject_categories": ["people who make a request to the controller"],
    },
    {
        "name": "Log scrubbing",
        "description": "Finding and removing personal data in log lines the controller "
        "sends: the lines are processed in memory and returned, or relayed to the "
        "controller's own collector, never stored; the controller's scrubbing settings are.",
        "data_categories": ["whatever personal data the controller's log lines contain"],
        "subject_categories": ["people named in the controller's logs"],
    },
    {
        "name": "Account administration and audit",
        "description": "The controller's members, their sign-in and API tokens, and the audit "
        "log of who accessed or changed what.",
        "data_categories": [
            "identification and contact data of members",
            "sign-in and access records (no content of the data accessed)",
        ],
        "subject_categories": ["the controller's staff using the service"],
    },
]

# The technical and organisational measures (Art. 32(1), Art. 30(2)(d)): what this service
# does, stated once so the PDF and the JSON cannot disagree.
SECURITY_MEASURES: list[dict] = [
    {
        "measure": "Encryption at rest",
        "description": "Names and e-mail addresses are encrypted field by field with "
        "AES-256-GCM, each ciphertext bound to its table, row and field; the key ring carries "
        "key ids, so keys are rotated and stored data is re-encrypted under the new key. "
        "Access packages and receipts are encrypted the same way before they reach object "
        "storage.",
    },
    {
        "measure": "Keyed blind indexes",
        "description": "E-mail addresses are found through a keyed HMAC-SHA-256 index, so "
        "lookups never need the address in clear and the index is worthless without its key.",
    },
    {
        "measure": "Encryption in transit",
        "description": "TLS only: plain HTTP is redirected to HTTPS, HSTS is sent, cookies "
        "are secure and HTTP-only.",
    },
    {
        "measure": "Isolation of accounts",
        "description": "Every customer's rows carry its account and are only read through "
        "it; another account's identifiers are answered as not found.",
    },
    {
        "measure": "Audit log",
        "description": "Every change and every download is recorded in an append-only audit "
        "log per account, its entries chained by SHA-256 hashes, so an altered or removed "
        "entry shows.",
    },
    {
        "measure": "Access control",
        "description": "Roles (member, admin) and API tokens narrowed to areas of the API. "
        "Platform support staff reach an account only through a time-limited grant issued "
        "by the account's admin, which the admin can revoke; every use of it is audited.",
    },
    {
        "measure": "PII scrubbing of logs",
        "description": "The service's own logs record identifiers, not names or e-mail "
        "addresses, and pass through its personal-data scrubber before they are written.",
    },
    {
        "measure": "Encrypted backups",
        "description": "Daily backups, encrypted before they leave the service, kept 30 days; "
        "every backup is deleted within 90 days at the latest.",
    },
    {
        "measure": "Erasure that survives a restore",
        "description": "Every erasure is written to an erasure ledger outside the database "
        "(keyed hashes, no plaintext), kept longer than any backup and replayed on every "
        "restore before the restored data is used.",
    },
]

# Erasure periods and backup retention (Art. 30(2) as GDPR.md asks: "erasure periods").
RETENTION: list[dict] = [
    {
        "data": "Data subjects in the inventory",
        "period": "Kept as long as the controller keeps them; erased at once on the "
        "controller's instruction or on a data subject's verified erasure request (Art. 17), "
        "with erasure instructions to the controller's recorded systems (Art. 19).",
    },
    {
        "data": "Access packages and erasure receipts",
        "period": "Kept encrypted with the request they answer; the link the data subject "
        "downloads them with expires after PRIVACY_RESULTS_DAYS (7 days by default).",
    },
    {
        "data": "Backups",
        "period": "Taken daily, encrypted, kept 30 days; every backup is deleted within 90 "
        "days at the latest. Data erased on request remains only in those encrypted backups, "
        "beyond use, and is erased again from a restored backup by replaying the erasure "
        "ledger.",
    },
]


def _at(at: datetime | None) -> datetime:
    return at or utcnow()


def _processor() -> dict:
    config = current_app.config
    return {
        "name": config.get("PROCESSOR_NAME") or "Privacy service",
        "contact": config.get("PROCESSOR_CONTACT") or config.get("MAIL_FROM"),
    }


def _locations(sp: SubProcessor, today: date) -> list[dict]:
    """Each location with its transfer basis and, for SCCs and BCRs, the safeguard on file."""
    out = []
    for country in sp.locations:
        t = rules.transfer(sp, country, today)
        item = {
            "country": t.country,
            "name": rules.country_name(t.country),
            "basis": t.basis,
            "safeguard": t.detail,
            "signed_on": None,
            "expires_on": None,
        }
        if t.safeguard is not None:
            item["signed_on"] = t.safeguard.signed_on.isoformat()
            if t.safeguard.expires_on is not None:
                item["expires_on"] = t.safeguard.expires_on.isoformat()
        out.append(item)
    return out


def _dpa(sp: SubProcessor, today: date) -> dict | None:
    valid = [d for d in sp.dpas if rules.valid_on(d, today)]
    if not valid:
        return None
    latest = max(valid, key=lambda d: d.signed_on)
    return {"version": latest.version, "signed_on": latest.signed_on.isoformat()}


def _subprocessor(sp: SubProcessor, today: date) -> dict:
    return {
        "id": str(sp.public_id),
        "legal_name": sp.legal_name,
        "address": sp.address,
        "contact": sp.contact,
        "website": sp.website,
        "purpose": sp.purpose,
        "services": list(sp.services),
        "data_categories": list(sp.data_categories),
        "subject_categories": list(sp.subject_categories),
        "locations": _locations(sp, today),
        "dpa": _dpa(sp, today),
    }


def _controller(account: Account) -> dict:
    """The account, with its admins as contacts (open invitations are not contacts yet)."""
    admins = db.session.scalars(for_account(Member, account).where(Member.role == "admin"))
    contacts = [
        {"name": m.name, "email": m.email}
        for m in admins
        if m.joined_at is not None or m.invited_at is None
    ]
    return {
        "id": str(account.public_id),
        "name": account.name,
        "contacts": sorted(contacts, key=lambda c: (c["name"].lower(), c["email"])),
    }


def annex(account: Account, at: datetime | None = None) -> dict:
    """The DPA annex: the sub-processors effective for `account` at `at` (default now), with
    locations and transfer safeguards on that date, and the announced changes not yet in
    force. A sub-processor's fields are its current ones (their history is in the register)."""
    at = _at(at)
    today = at.date()
    return {
        "format": ANNEX_FORMAT,
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "effective_at": at.isoformat(timespec="seconds"),
        "processor": _processor(),
        "controller": {"id": str(account.public_id), "name": account.name},
        "subprocessors": [_subprocessor(sp, today) for sp in notices.effective_for(account, at)],
        "pending": [
            {
                "list_version": v.number,
                "change": v.change,
                "legal_name": v.notice["subprocessor"]["legal_name"],
                "announced_at": v.announced_at.isoformat(timespec="seconds"),
                "effective_at": v.effective_at.isoformat(timespec="seconds"),
            }
            for v in notices.pending_for(account, at)
        ],
    }


def record(account: Account, at: datetime | None = None) -> dict:
    """The Art. 30(2) record the platform keeps as processor for `account`: processor and
    controller, categories of processing, sub-processors, transfers to third countries with
    their safeguards, security measures, erasure and backup retention."""
    at = _at(at)
    today = at.date()
    subprocessors = [_subprocessor(sp, today) for sp in notices.effective_for(account, at)]
    transfers = [
        {"subprocessor": sp["legal_name"], **location}
        for sp in subprocessors
        for location in sp["locations"]
        if location["basis"] != "eea"
    ]
    return {
        "format": RECORD_FORMAT,
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "effective_at": at.isoformat(timespec="seconds"),
        "processor": _processor(),
        "controller": _controller(account),
        "categories_of_processing": copy.deepcopy(CATEGORIES_OF_PROCESSING),
        "subprocessors": subprocessors,
        "transfers": transfers,
        "security_measures": copy.deepcopy(SECURITY_MEASURES),
        "retention": copy.deepcopy(RETENTION),
    }


# Rendering a document takes about a second of CPU, so each process keeps the last few it
# rendered: a download of the same content on the same day is served from here.
_RENDERED: OrderedDict[str, bytes] = OrderedDict()
_RENDERED_MAX = 32
_RENDERED_LOCK = threading.Lock()


def _render_once(template: str, doc: dict) -> bytes:
    """The PDF of `doc`, rendered only when its content changed. The PDF shows the date of
    `effective_at`, never `generated_at`, so the key holds exactly what the page shows."""
    shown = {**doc, "effective_at": doc["effective_at"][:10]}
    shown.pop("generated_at", None)
    text = json.dumps([template, shown], sort_keys=True, default=str)
    key = hashlib.sha256(text.encode()).hexdigest()
    with _RENDERED_LOCK:
        if key in _RENDERED:
            _RENDERED.move_to_end(key)
            return _RENDERED[key]
    rendered = pdf.render_pdf(template, doc=doc)
    with _RENDERED_LOCK:
        _RENDERED[key] = rendered
        while len(_RENDERED) > _RENDERED_MAX:
            _RENDERED.popitem(last=False)
    return rendered


def render_annex_pdf(account: Account, at: datetime | None = None) -> bytes:
    """annex() as PDF (the same data, laid out for signing with the DPA)."""
    return _render_once("processors/pdf/annex.html", annex(account, at))


def render_record_pdf(account: Account, at: datetime | None = None) -> bytes:
    """record() as PDF."""
    return _render_once("processors/pdf/record.html", record(account, at))


def record_download(account: Account, *, name: str, actor: str) -> None:
    """Audit that `actor` downloaded the account's document `name` (ids only, no content)."""
    audit.record(
        account,
        action="document.downloaded",
        object_type="account",
        object_id=account.public_id,
        data={"document": name},
        actor=actor,
    )
