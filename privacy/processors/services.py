"""The register: sub-processors with full field history, transfer safeguards, DPAs and
their documents, activation and retirement, and the list versions every change creates.

Managed by platform operators with the DPO role; every change is audited on the platform
chain. The transfer rules are in privacy.processors.rules; every list version is announced
through privacy.processors.notices, which owns the customer-facing parts (notices,
objections, what is effective for an account).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from datetime import timedelta

from flask import current_app
from sqlalchemy import func
from sqlalchemy import select

from privacy import pdf
from privacy import storage
from privacy import validation
from privacy.audit import services as audit
from privacy.database import utcnow
from privacy.errors import Conflict
from privacy.errors import NotFound
from privacy.errors import PayloadTooLarge
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.processors import notices
from privacy.processors import rules
from privacy.processors.models import Dpa
from privacy.processors.models import FieldChange
from privacy.processors.models import ListVersion
from privacy.processors.models import Safeguard
from privacy.processors.models import SubProcessor
from privacy.processors.rules import SCC_DECISION

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
FIELDS = (
    "legal_name",
    "address",
    "contact",
    "website",
    "purpose",
    "data_categories",
    "subject_categories",
    "locations",
    "services",
    "review_due",
    "dpf_certified",
)
REQUIRED = ("legal_name", "address", "contact", "purpose")
# One-line fields (the legal name is in every change notice's mail subject) and free text.
LABELS = {
    "legal_name": ("Legal name", 200),
    "contact": ("Contact", 320),
    "website": ("Website", 500),
}
TEXTS = {"address": ("Address", 5000), "purpose": ("Purpose", 5000)}
LISTS = ("data_categories", "subject_categories", "services")
MAX_LIST_ITEMS = 100
MAX_ITEM = 500
# Changes to an active sub-processor that are announced with a notice period.
NOTIFIABLE = ("locations", "purpose", "data_categories", "subject_categories", "legal_name")


# -- the register ------------------------------------------------------------------------


def _clean(data: dict, *, partial: bool) -> dict:
    errors: dict[str, list[str]] = {}
    out: dict = {}
    for field in FIELDS:
        if field not in data:
            if not partial and field in REQUIRED:
                errors[field] = ["Required."]
            continue
        value = data[field]
        if field in LABELS or field in TEXTS:
            value = "" if value is None else value
            if not isinstance(value, str):
                errors[field] = ["Text expected."]
                continue
            if not value.strip():
                if field in REQUIRED:
                    errors[field] = ["Required."]
                else:
                    out[field] = None
                continue
            try:
                if field in LABELS:
                    what, limit = LABELS[field]
                    out[field] = validation.clean_label(value, what=what, max_length=limit)
                else:
                    what, limit = TEXTS[field]
                    out[field] = validation.clean_text(value, what=what, max_length=limit)
            except ValueError as exc:
                errors[field] = [str(exc)]
        elif field in LISTS:
            if not isinstance(value, list) or len(value) > MAX_LIST_ITEMS:
                errors[field] = [f"A list of at most {MAX_LIST_ITEMS} non-empty texts."]
                continue
            try:
                out[field] = [
                    validation.clean_label(v, what="Each entry", max_length=MAX_ITEM) for v in value
                ]
            except ValueError as exc:
                errors[field] = [str(exc)]
        elif field == "locations":
            if not isinstance(value, list):
                errors[field] = ["A list of country codes."]
                continue
            codes, bad = [], []
            for item in value:
                try:
                    codes.append(rules.check_country(item))
                except ValueError as exc:
                    bad.append(str(exc))
            if bad:
                errors[field] = bad
                continue
            out[field] = sorted(set(codes), key=codes.index)
        elif field == "review_due":
            if value is not None and not isinstance(value, date):
                try:
                    value = date.fromisoformat(str(value))
                except ValueError:
                    errors[field] = ["A date, YYYY-MM-DD."]
                    continue
            out[field] = value
        elif field == "dpf_certified":
            if not isinstance(value, bool):
                errors[field] = ["true or false."]
                continue
            out[field] = value
    if errors:
        raise ValidationFailed(errors=errors)
    return out


def _jsonable(value):
    return value.isoformat() if isinstance(value, date) else value


def _history(sp: SubProcessor, field: str, old, new, actor: str) -> None:
    db.session.add(
        FieldChange(
            subprocessor_id=sp.id,
            at=utcnow(),
            actor=actor,
            field=field,
            old=_jsonable(old),
            new=_jsonable(new),
        )
    )


def create(*, data: dict, actor: str, example: bool = False) -> SubProcessor:
    values = _clean(data, partial=False)
    if _by_name(values["legal_name"]) is not None:
        raise Conflict("A sub-processor with this legal name exists already.")
    sp = SubProcessor(public_id=uuid.uuid4(), status="draft", example=example)
    for field in FIELDS:
        if field in values:
            setattr(sp, field, values[field])
    db.session.add(sp)
    db.session.flush()
    for field in FIELDS:
        if field in values:
            _history(sp, field, None, values[field], actor)
    audit.record(
        None,
        action="subprocessor.created",
        object_type="subprocessor",
        object_id=sp.public_id,
        actor=actor,
    )
    return sp


def _by_name(name: str) -> SubProcessor | None:
    return db.session.scalar(
        select(SubProcessor).where(func.lower(SubProcessor.legal_name) == name.lower())
    )


def update(sp: SubProcessor, *, changes: dict, actor: str) -> SubProcessor:
    """Change fields; each changed field goes to the history with its old and new value."""
    values = _clean(changes, partial=True)
    if "legal_name" in values:
        other = _by_name(values["legal_name"])
        if other is not None and other.id != sp.id:
            raise Conflict("A sub-processor with this legal name exists already.")
    changed = []
    for field, value in values.items():
        old = getattr(sp, field)
        if old != value:
            _history(sp, field, old, value, actor)
            setattr(sp, field, value)
            changed.append(field)
    if changed:
        sp.updated_at = utcnow()
        audit.record(
            None,
            action="subprocessor.updated",
            object_type="subprocessor",
            object_id=sp.public_id,
            data={"fields": changed},
            actor=actor,
        )
    material = [field for field in changed if field in NOTIFIABLE]
    if sp.status == "active" and material:
        # A new place, purpose or kind of data is a change customers must hear of in advance
        # and may object to, like a new sub-processor.
        missing = rules.blockers(sp, utcnow().date())
        if missing:
            raise Conflict(
                "This change would leave an active sub-processor without what it needs.",
                errors={"missing": missing},
            )
        version = _new_version("changed", sp, None, actor, extra={"fields": material})
        notices.announce(version)
    return sp


def get(public_id: uuid.UUID) -> SubProcessor:
    sp = db.session.scalar(select(SubProcessor).where(SubProcessor.public_id == public_id))
    if sp is None:
        raise NotFound("Sub-processor not found.")
    return sp


def list_all(*, status: str | None = None) -> list[SubProcessor]:
    query = select(SubProcessor).order_by(func.lower(SubProcessor.legal_name))
    if status:
        query = query.where(SubProcessor.status == status)
    return list(db.session.scalars(query))


def public_list(today: date) -> dict:
    """The published list: the active sub-processors with their transfer bases on `today`,
    and the newest list version (0 and None before the first)."""
    latest = db.session.scalar(select(ListVersion).order_by(ListVersion.number.desc()).limit(1))
    return {
        "list_version": latest.number if latest else 0,
        "updated_at": latest.announced_at if latest else None,
        "subprocessors": [notices.notice_of(sp, today) for sp in list_all(status="active")],
    }


def history(sp: SubProcessor) -> list[FieldChange]:
    return list(
        db.session.scalars(
            select(FieldChange).where(FieldChange.subprocessor_id == sp.id).order_by(FieldChange.id)
        )
    )


# -- documents ---------------------------------------------------------------------------


def check_pdf(data: bytes) -> str:
    """Refuse anything but a readable PDF of at most 20 MB; returns its SHA-256."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge("A document is at most 20 MB.")
    if not data.startswith(b"%PDF-"):
        raise ValidationFailed(errors={"document": ["This file is not a PDF."]})
    if not pdf.page_count(data):
        raise ValidationFailed(errors={"document": ["This PDF cannot be read."]})
    return hashlib.sha256(data).hexdigest()


def _store_document(sp: SubProcessor, kind: str, data: bytes) -> tuple[str, str]:
    digest = check_pdf(data)
    key = f"subprocessors/{sp.public_id}/{kind}-{digest[:16]}.pdf"
    storage.get().put(key, data, content_type="application/pdf")
    return key, digest


def document(key: str) -> bytes:
    return storage.get().get(key)


def download_document(document_id: uuid.UUID, *, actor: str) -> tuple[str, bytes]:
    """A safeguard's or DPA's PDF for the DPO, as (kind, bytes): "dpa", "scc" or "bcr".
    NotFound when no document has this id. Every download is audited on the platform chain."""
    item = db.session.scalar(select(Dpa).where(Dpa.public_id == document_id)) or db.session.scalar(
        select(Safeguard).where(Safeguard.public_id == document_id)
    )
    if item is None or item.document_key is None:
        raise NotFound("Document not found.")
    kind = "dpa" if isinstance(item, Dpa) else item.kind
    data = document(item.document_key)
    audit.record(
        None,
        action="subprocessor.document_downloaded",
        object_type="subprocessor",
        object_id=item.subprocessor.public_id,
        data={"document": str(document_id), "kind": kind},
        actor=actor,
    )
    return kind, data


def _date(value, field: str, *, required: bool) -> date | None:
    if value in (None, ""):
        if required:
            raise ValidationFailed(errors={field: ["Required."]})
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(errors={field: ["A date, YYYY-MM-DD."]}) from None


def add_safeguard(
    sp: SubProcessor,
    *,
    country: str,
    kind: str,
    signed_on,
    scc_module: int | None = None,
    expires_on=None,
    document: bytes | None = None,
    actor: str,
) -> Safeguard:
    """SCCs (module 1-4, Decision 2021/914) or BCRs for transfers to `country`."""
    errors: dict[str, list[str]] = {}
    try:
        country = rules.check_country(country)
    except ValueError as exc:
        errors["country"] = [str(exc)]
    if kind not in ("scc", "bcr"):
        errors["kind"] = ["scc or bcr."]
    if kind == "scc" and scc_module not in (1, 2, 3, 4):
        errors["scc_module"] = ["SCC modules are 1 to 4 (Decision 2021/914)."]
    if kind == "bcr" and scc_module is not None:
        errors["scc_module"] = ["BCRs have no SCC module."]
    if errors:
        raise ValidationFailed(errors=errors)
    signed = _date(signed_on, "signed_on", required=True)
    expires = _date(expires_on, "expires_on", required=False)
    if expires is not None and expires <= signed:
        raise ValidationFailed(errors={"expires_on": ["Must be after the signing date."]})
    safeguard = Safeguard(
        public_id=uuid.uuid4(),
        country=country,
        kind=kind,
        scc_module=scc_module if kind == "scc" else None,
        decision=SCC_DECISION if kind == "scc" else None,
        signed_on=signed,
        expires_on=expires,
        created_at=utcnow(),
    )
    if document is not None:
        safeguard.document_key, safeguard.document_sha256 = _store_document(sp, kind, document)
    sp.safeguards.append(safeguard)
    db.session.flush()
    _history(
        sp,
        "safeguard",
        None,
        {
            "country": country,
            "kind": kind,
            "scc_module": safeguard.scc_module,
            "signed_on": signed.isoformat(),
        },
        actor,
    )
    audit.record(
        None,
        action="subprocessor.safeguard_added",
        object_type="subprocessor",
        object_id=sp.public_id,
        data={"country": country, "kind": kind, "scc_module": safeguard.scc_module},
        actor=actor,
    )
    return safeguard


def add_dpa(
    sp: SubProcessor,
    *,
    version: str,
    signed_on,
    expires_on=None,
    document: bytes | None = None,
    actor: str,
) -> Dpa:
    try:
        version = validation.clean_label(version or "", what="Version", max_length=50)
    except ValueError as exc:
        raise ValidationFailed(errors={"version": [str(exc)]}) from None
    if any(d.version == version for d in sp.dpas):
        raise Conflict("This DPA version is on file already.")
    signed = _date(signed_on, "signed_on", required=True)
    expires = _date(expires_on, "expires_on", required=False)
    if expires is not None and expires <= signed:
        raise ValidationFailed(errors={"expires_on": ["Must be after the signing date."]})
    dpa = Dpa(
        public_id=uuid.uuid4(),
        version=version,
        signed_on=signed,
        expires_on=expires,
        created_at=utcnow(),
    )
    if document is not None:
        dpa.document_key, dpa.document_sha256 = _store_document(sp, "dpa", document)
    sp.dpas.append(dpa)
    db.session.flush()
    _history(sp, "dpa", None, {"version": version, "signed_on": signed.isoformat()}, actor)
    audit.record(
        None,
        action="subprocessor.dpa_added",
        object_type="subprocessor",
        object_id=sp.public_id,
        data={"version": version},
        actor=actor,
    )
    return dpa


# -- activation and retirement --------------------------------------------------------


def activate(sp: SubProcessor, *, actor: str, replaces: SubProcessor | None = None) -> ListVersion:
    """Activate (409 naming what is missing) and announce the change as a new list version."""
    if sp.status == "active":
        raise Conflict("This sub-processor is active already.")
    if sp.status == "retired":
        raise Conflict("A retired sub-processor cannot be activated again; add it anew.")
    missing = rules.blockers(sp, utcnow().date())
    if missing:
        raise Conflict("This sub-processor cannot be activated yet.", errors={"missing": missing})
    if replaces is not None and replaces.status != "active":
        raise Conflict("Only an active sub-processor can be replaced.")
    sp.status = "active"
    sp.activated_at = utcnow()
    _history(sp, "status", "draft", "active", actor)
    version = _new_version("replaced" if replaces else "added", sp, replaces, actor)
    if replaces is not None:
        retire(replaces, actor=actor, announce=False)
    audit.record(
        None,
        action="subprocessor.activated",
        object_type="subprocessor",
        object_id=sp.public_id,
        data={"list_version": version.number},
        actor=actor,
    )
    notices.announce(version)
    return version


def retire(sp: SubProcessor, *, actor: str, announce: bool = True) -> ListVersion | None:
    """Stop using a sub-processor; customers are told, but removal needs no notice period."""
    if sp.status != "active":
        raise Conflict("Only an active sub-processor can be retired.")
    sp.status = "retired"
    sp.retired_at = utcnow()
    _history(sp, "status", "active", "retired", actor)
    audit.record(
        None,
        action="subprocessor.retired",
        object_type="subprocessor",
        object_id=sp.public_id,
        actor=actor,
    )
    if not announce:
        return None
    version = _new_version("removed", sp, None, actor)
    notices.announce(version)
    return version


def _new_version(
    change: str, sp: SubProcessor, replaces, actor: str, extra: dict | None = None
) -> ListVersion:
    now = utcnow()
    days = 0 if change == "removed" else current_app.config.get("SUBPROCESSOR_NOTICE_DAYS", 30)
    number = (db.session.scalar(select(func.max(ListVersion.number))) or 0) + 1
    notice = {"change": change, "subprocessor": notices.notice_of(sp), **(extra or {})}
    if replaces is not None:
        notice["replaces"] = {"id": str(replaces.public_id), "legal_name": replaces.legal_name}
    version = ListVersion(
        number=number,
        change=change,
        subprocessor_id=sp.id,
        replaces_id=replaces.id if replaces is not None else None,
        announced_at=now,
        effective_at=now + timedelta(days=days),
        notice=notice,
        actor=actor,
    )
    db.session.add(version)
    db.session.flush()
    return version


def dashboard(today: date | None = None) -> dict:
    """For the DPO: what is blocked (drafts that cannot be activated, active ones whose
    safeguard or DPA lapsed) and which reviews are due."""
    today = today or utcnow().date()
    blocked, lapsed, reviews = [], [], []
    for sp in list_all():
        if sp.status == "retired":
            continue
        missing = rules.blockers(sp, today)
        if missing and sp.status == "draft":
            blocked.append((sp, missing))
        elif missing:
            lapsed.append((sp, missing))
        if sp.review_due is not None and sp.review_due <= today + timedelta(days=14):
            reviews.append(sp)
    return {"blocked": blocked, "lapsed": lapsed, "reviews": reviews}
