"""Pages of the sub-processor register: the public list at /subprocessors, and the DPO's
register under /dpo/subprocessors (list, form, detail with field history, safeguards and
DPAs with their documents, activation, pending changes, objections, dashboard).

Sub-processor, document and objection ids travel in the query string (pages) or the form
body (posts); they name companies and contracts, never people.
"""

from __future__ import annotations

import re
import uuid
from datetime import date

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import g
from flask import redirect
from flask import request
from flask import url_for
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from privacy.accounts.models import Account
from privacy.auth.permissions import DPO
from privacy.auth.permissions import page
from privacy.auth.permissions import public
from privacy.database import utcnow
from privacy.database import writes
from privacy.errors import AppError
from privacy.errors import Conflict
from privacy.errors import NotFound
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.pages import render_page
from privacy.processors import notices
from privacy.processors import rules
from privacy.processors import services
from privacy.processors.models import ListVersion
from privacy.processors.models import Objection
from privacy.processors.models import SubProcessor
from privacy.processors.rules import SAFEGUARD_KINDS
from privacy.processors.rules import SCC_MODULES

bp = Blueprint("processor_pages", __name__)

UPLOAD_ENDPOINTS = frozenset({"processor_pages.add_safeguard", "processor_pages.add_dpa"})
# A document of the largest size we keep, plus room for the other fields of its form.
UPLOAD_BODY_BYTES = services.MAX_DOCUMENT_BYTES + 256 * 1024
SP_FIELDS = services.FIELDS
SAFEGUARD_FIELDS = ("country", "kind", "scc_module", "signed_on", "expires_on", "document")
DPA_FIELDS = ("version", "signed_on", "expires_on", "document")
RESOLVED_SHOWN = 50
BASIS = {
    "eea": "Within the EU/EEA",
    "adequacy": "Adequacy decision (Art. 45)",
    "scc": "Standard contractual clauses (Art. 46)",
    "bcr": "Binding corporate rules (Art. 47)",
    "none": "No valid safeguard",
}
DONE = {
    "created": "The sub-processor is in the register as a draft.",
    "updated": "Saved; every changed field is in the history below.",
    "safeguard": "The safeguard is on file.",
    "dpa": "The DPA is on file.",
    "activated": "Activated; every account is notified of the new list version.",
    "retired": "Retired; every account is notified.",
}


@bp.url_value_preprocessor
def _upload_body_limit(endpoint, values):
    """Allow document uploads up to 20 MB, and refuse more before the body is read.

    Set here rather than in the view: the CSRF check, an app-wide before_request, parses the
    form under the app-wide limit, and URL value preprocessors run before every
    before_request function.
    """
    if endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = UPLOAD_BODY_BYTES


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error):
    message = (
        "A document is at most 20 MB."
        if request.endpoint in UPLOAD_ENDPOINTS
        else "The request body is too large."
    )
    payload = {"code": 413, "status": "Request Entity Too Large", "message": message}
    return render_page("error.html", 413, error=payload)


def show(value) -> str:
    """A history value as text: lists joined, objects as key: value pairs."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(show(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {show(v)}" for k, v in value.items() if v is not None)
    return str(value)


def in_force(item, today: date) -> str:
    """A safeguard's or DPA's state on `today`, for the tables."""
    if item.signed_on > today:
        return f"from {item.signed_on.isoformat()}"
    if item.expires_on is not None and item.expires_on <= today:
        return "expired"
    return "in force"


@bp.context_processor
def _helpers():
    return {"country_name": rules.country_name, "show": show, "basis": BASIS}


# -- the public list --------------------------------------------------------------------


def _latest_versions() -> dict[int, ListVersion]:
    """The newest added/replaced list version of each sub-processor."""
    latest: dict[int, ListVersion] = {}
    for version in db.session.scalars(
        select(ListVersion)
        .where(ListVersion.change.in_(("added", "replaced")))
        .order_by(ListVersion.number)
    ):
        latest[version.subprocessor_id] = version
    return latest


@bp.get("/subprocessors")
@public
def public_list():
    """Every sub-processor in use, where it processes data and on which transfer basis."""
    now = utcnow()
    latest = _latest_versions()
    rows = [
        (sp, [rules.transfer(sp, c, now.date()) for c in sp.locations], latest.get(sp.id))
        for sp in services.list_all(status="active")
    ]
    return render_page(
        "processors/public.html",
        rows=rows,
        now=now,
        notice_days=current_app.config.get("SUBPROCESSOR_NOTICE_DAYS", 30),
    )


# -- helpers for the DPO pages ----------------------------------------------------------


def _uuid(value: str | None, label: str) -> uuid.UUID:
    try:
        return uuid.UUID(value or "")
    except ValueError:
        raise NotFound(f"{label} not found.") from None


def _subprocessor(source) -> SubProcessor:
    return services.get(_uuid(source.get("id"), "Sub-processor"))


def _split_failure(exc: AppError, fields) -> tuple[str, dict]:
    """The page's message and the field messages shown next to their inputs."""
    errors = exc.data.get("errors") or {}
    inline = {k: v for k, v in errors.items() if k in fields}
    rest = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in errors.items() if k not in fields)
    message = exc.data["message"]
    if inline:
        message += " Please correct the fields marked below."
    return f"{message} {rest}".strip(), inline


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _codes(text: str) -> list[str]:
    return [code for code in re.split(r"[\s,;]+", text or "") if code]


def _form_data(form) -> dict:
    """The sub-processor form as the service's fields (the service validates them)."""
    return {
        "legal_name": form.get("legal_name", ""),
        "address": form.get("address", ""),
        "contact": form.get("contact", ""),
        "website": form.get("website", ""),
        "purpose": form.get("purpose", ""),
        "data_categories": _lines(form.get("data_categories", "")),
        "subject_categories": _lines(form.get("subject_categories", "")),
        "services": _lines(form.get("services", "")),
        "locations": _codes(form.get("locations", "")),
        "review_due": form.get("review_due") or None,
        "dpf_certified": form.get("dpf_certified") == "yes",
    }


def _form_values(sp: SubProcessor) -> dict:
    return {
        "legal_name": sp.legal_name,
        "address": sp.address,
        "contact": sp.contact,
        "website": sp.website or "",
        "purpose": sp.purpose,
        "data_categories": "\n".join(sp.data_categories),
        "subject_categories": "\n".join(sp.subject_categories),
        "services": "\n".join(sp.services),
        "locations": ", ".join(sp.locations),
        "review_due": sp.review_due.isoformat() if sp.review_due else "",
        "dpf_certified": "yes" if sp.dpf_certified else "",
    }


def _document() -> bytes | None:
    upload = request.files.get("document")
    if upload is None or not upload.filename:
        return None
    return upload.read()


def _module(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed(errors={"scc_module": ["A module number, 1 to 4."]}) from None


# -- the DPO's register -----------------------------------------------------------------


@bp.get("/dpo/subprocessors")
@page(DPO)
def dpo_list():
    today = utcnow().date()
    rows = [(sp, rules.blockers(sp, today)) for sp in services.list_all()]
    return render_page("processors/dpo_list.html", rows=rows)


def _edit_page(sp: SubProcessor | None, values: dict, status: int = 200, **context):
    return render_page(
        "processors/dpo_form.html",
        status,
        sp=sp,
        values=values,
        field_errors=context.pop("field_errors", {}),
        **context,
    )


@bp.get("/dpo/subprocessors/new")
@page(DPO)
def new():
    return _edit_page(None, {})


@bp.post("/dpo/subprocessors/new")
@page(DPO)
def create():
    try:
        sp = services.create(data=_form_data(request.form), actor=g.actor)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        message, inline = _split_failure(exc, SP_FIELDS)
        return _edit_page(None, request.form, exc.code, error=message, field_errors=inline)
    return redirect(url_for("processor_pages.detail", id=sp.public_id, done="created"), 303)


@bp.get("/dpo/subprocessors/edit")
@page(DPO)
def edit():
    sp = _subprocessor(request.args)
    return _edit_page(sp, _form_values(sp))


@bp.post("/dpo/subprocessors/edit")
@page(DPO)
def update():
    sp = _subprocessor(request.form)
    try:
        services.update(sp, changes=_form_data(request.form), actor=g.actor)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        message, inline = _split_failure(exc, SP_FIELDS)
        return _edit_page(sp, request.form, exc.code, error=message, field_errors=inline)
    return redirect(url_for("processor_pages.detail", id=sp.public_id, done="updated"), 303)


def _detail_page(sp: SubProcessor, status: int = 200, **context):
    today = utcnow().date()
    versions = db.session.scalars(
        select(ListVersion)
        .where((ListVersion.subprocessor_id == sp.id) | (ListVersion.replaces_id == sp.id))
        .order_by(ListVersion.number)
    )
    replaceable = [other for other in services.list_all(status="active") if other.id != sp.id]
    context.setdefault("notice", DONE.get(request.args.get("done", "")))
    return render_page(
        "processors/dpo_detail.html",
        status,
        sp=sp,
        today=today,
        blockers=rules.blockers(sp, today),
        transfers=[rules.transfer(sp, c, today) for c in sp.locations],
        history=services.history(sp),
        versions=list(versions),
        replaceable=replaceable,
        kinds=SAFEGUARD_KINDS,
        modules=SCC_MODULES,
        in_force=in_force,
        safeguard_values=context.pop("safeguard_values", {}),
        safeguard_errors=context.pop("safeguard_errors", {}),
        dpa_values=context.pop("dpa_values", {}),
        dpa_errors=context.pop("dpa_errors", {}),
        **context,
    )


@bp.get("/dpo/subprocessors/view")
@page(DPO)
def detail():
    return _detail_page(_subprocessor(request.args))


@bp.post("/dpo/subprocessors/safeguards")
@page(DPO)
def add_safeguard():
    sp = _subprocessor(request.form)
    form = request.form
    try:
        services.add_safeguard(
            sp,
            country=form.get("country", ""),
            kind=form.get("kind", ""),
            scc_module=_module(form.get("scc_module")),
            signed_on=form.get("signed_on"),
            expires_on=form.get("expires_on"),
            document=_document(),
            actor=g.actor,
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        message, inline = _split_failure(exc, SAFEGUARD_FIELDS)
        return _detail_page(
            sp, exc.code, error=message, safeguard_values=form, safeguard_errors=inline
        )
    return redirect(url_for("processor_pages.detail", id=sp.public_id, done="safeguard"), 303)


@bp.post("/dpo/subprocessors/dpas")
@page(DPO)
def add_dpa():
    sp = _subprocessor(request.form)
    form = request.form
    try:
        services.add_dpa(
            sp,
            version=form.get("version", ""),
            signed_on=form.get("signed_on"),
            expires_on=form.get("expires_on"),
            document=_document(),
            actor=g.actor,
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        message, inline = _split_failure(exc, DPA_FIELDS)
        return _detail_page(sp, exc.code, error=message, dpa_values=form, dpa_errors=inline)
    return redirect(url_for("processor_pages.detail", id=sp.public_id, done="dpa"), 303)


@bp.get("/dpo/subprocessors/document")
@writes
@page(DPO)
def document():
    """A safeguard's or DPA's PDF; every download is on the platform's audit chain."""
    document_id = _uuid(request.args.get("id"), "Document")
    kind, data = services.download_document(document_id, actor=g.actor)
    db.session.commit()
    response = Response(data, mimetype="application/pdf")
    name = f"{kind}-{document_id}.pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/dpo/subprocessors/activate")
@page(DPO)
def activate():
    """Activate a draft (or activate it as the replacement of an active one): 409 with what
    is missing; otherwise a new list version is announced to every account."""
    sp = _subprocessor(request.form)
    try:
        replaces = request.form.get("replaces")
        replaced = services.get(_uuid(replaces, "Sub-processor")) if replaces else None
        services.activate(sp, actor=g.actor, replaces=replaced)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        missing = (
            (exc.data.get("errors") or {}).get("missing") if isinstance(exc, Conflict) else None
        )
        if missing:
            return _detail_page(sp, exc.code, error=exc.data["message"], missing=missing)
        message, _ = _split_failure(exc, ())
        return _detail_page(sp, exc.code, error=message)
    return redirect(url_for("processor_pages.detail", id=sp.public_id, done="activated"), 303)


@bp.post("/dpo/subprocessors/retire")
@page(DPO)
def retire():
    sp = _subprocessor(request.form)
    try:
        services.retire(sp, actor=g.actor)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        message, _ = _split_failure(exc, ())
        return _detail_page(sp, exc.code, error=message)
    return redirect(url_for("processor_pages.detail", id=sp.public_id, done="retired"), 303)


@bp.get("/dpo/subprocessors/pending")
@page(DPO)
def pending():
    """List versions announced whose notice period has not ended, soonest first."""
    now = utcnow()
    versions = list(
        db.session.scalars(
            select(ListVersion)
            .where(ListVersion.effective_at > now)
            .order_by(ListVersion.effective_at, ListVersion.number)
        )
    )
    counts = dict(
        db.session.execute(
            select(Objection.list_version_id, func.count())
            .where(Objection.list_version_id.in_([v.id for v in versions]))
            .group_by(Objection.list_version_id)
        ).all()
    )
    return render_page("processors/dpo_pending.html", versions=versions, counts=counts, now=now)


def _objections_page(status: int = 200, **context):
    def with_accounts(query):
        return [(o, db.session.get(Account, o.account_id)) for o in db.session.scalars(query)]

    open_ = with_accounts(
        select(Objection).where(Objection.state == "open").order_by(Objection.created_at)
    )
    resolved = with_accounts(
        select(Objection)
        .where(Objection.state == "resolved")
        .order_by(Objection.resolved_at.desc())
        .limit(RESOLVED_SHOWN)
    )
    return render_page(
        "processors/dpo_objections.html",
        status,
        open_objections=open_,
        resolved=resolved,
        outcomes=notices.OUTCOMES,
        values=context.pop("values", {}),
        field_errors=context.pop("field_errors", {}),
        failed_id=context.pop("failed_id", None),
        **context,
    )


@bp.get("/dpo/subprocessors/objections")
@page(DPO)
def objections():
    notice = "The objection is resolved." if request.args.get("done") else None
    return _objections_page(notice=notice)


@bp.post("/dpo/subprocessors/objections/resolve")
@page(DPO)
def resolve_objection():
    """Record how an objection ended (alternative, termination, or withdrawn by the customer)."""
    objection_id = _uuid(request.form.get("id"), "Objection")
    objection = db.session.scalar(select(Objection).where(Objection.public_id == objection_id))
    if objection is None:
        raise NotFound("Objection not found.")
    try:
        notices.resolve(
            objection,
            outcome=request.form.get("outcome", ""),
            resolution=request.form.get("resolution", ""),
            actor=g.actor,
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        message, inline = _split_failure(exc, ("outcome", "resolution"))
        return _objections_page(
            exc.code,
            error=message,
            values=request.form,
            field_errors=inline,
            failed_id=str(objection_id),
        )
    return redirect(url_for("processor_pages.objections", done=1), 303)


@bp.get("/dpo/subprocessors/dashboard")
@page(DPO)
def dashboard():
    """What needs the DPO: drafts that cannot be activated, active ones whose safeguard or DPA
    lapsed, reviews due within 14 days, open objections and changes in their notice period."""
    today: date = utcnow().date()
    board = services.dashboard(today)
    open_count = db.session.scalar(
        select(func.count()).select_from(Objection).where(Objection.state == "open")
    )
    pending_count = db.session.scalar(
        select(func.count()).select_from(ListVersion).where(ListVersion.effective_at > utcnow())
    )
    return render_page(
        "processors/dpo_dashboard.html",
        today=today,
        open_objections=open_count,
        pending=pending_count,
        **board,
    )
