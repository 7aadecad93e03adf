"""The public request form per account: /privacy-request/<account public id>.

Anyone may send it; nothing happens until the person uses the link mailed to the address
they gave (privacy.dsr.verification). The answer is the same for every address.
The person who sends the form is the actor the audit log names (`verification.ACTOR`).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

from flask import Blueprint
from flask import current_app
from flask import redirect
from flask import request
from flask import url_for
from sqlalchemy import select

from privacy.accounts.models import Account
from privacy.auth.permissions import public
from privacy.dsr import verification
from privacy.dsr.models import KINDS
from privacy.errors import TooManyRequests
from privacy.errors import error_payload
from privacy.extensions import db
from privacy.extensions import limiter
from privacy.pages import render_page
from privacy.validation import normalize_email

bp = Blueprint("dsr_form", __name__)

MAX_MESSAGE = 2000
# (value, label, plain-language explanation), in the order the form shows them.
CHOICES = (
    (
        "access",
        "See my data",
        "A copy of the personal data held about you, with what it is used for, who receives "
        "it, where it is kept and for how long (Art. 15 GDPR).",
    ),
    (
        "portability",
        "Take my data elsewhere",
        "Your data in a structured, machine-readable file (JSON) that you can give to another "
        "service (Art. 20 GDPR).",
    ),
    (
        "erasure",
        "Delete my data",
        "Your data is deleted from the live systems at once. Encrypted backups, which nobody "
        "uses, are purged within 90 days (Art. 17 GDPR).",
    ),
)


def _form_limit() -> str:
    return current_app.config["REQUEST_RATE_LIMIT"]


def _client_limit() -> str:
    """Ten times the per-address limit per client address (offices share one address)."""
    count, _, period = _form_limit().partition(" ")
    return f"{int(count) * 10} {period}"


def _email_key() -> str:
    # Keyed: the limiter's storage sees neither the address nor a hash anyone could
    # recompute from a list of addresses.
    raw = (request.form.get("email") or "").strip().lower()
    key = current_app.config["SECRET_KEY"].encode()
    return "dsr-form:" + hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()


def _account(account_id: uuid.UUID) -> Account | None:
    return db.session.scalar(select(Account).where(Account.public_id == account_id))


def _no_such_form():
    error = {
        "code": 404,
        "status": "Not Found",
        "message": "There is no privacy request form at this address. "
        "Check the link you were given.",
    }
    return render_page("error.html", 404, error=error)


def _too_many(exc: TooManyRequests):
    payload, headers = error_payload(exc)
    body, status = render_page("error.html", 429, error=payload)
    return body, status, headers


def _form(account: Account, status: int = 200, **context):
    return render_page(
        "dsr/form.html",
        status,
        account=account,
        choices=CHOICES,
        max_message=MAX_MESSAGE,
        hours=verification.LINK_HOURS,
        **context,
    )


@bp.get("/privacy-request/<uuid:account_id>")
@public
def show_form(account_id: uuid.UUID):
    account = _account(account_id)
    if account is None:
        return _no_such_form()
    return _form(account)


@bp.post("/privacy-request/<uuid:account_id>")
@public
@limiter.limit(_form_limit, key_func=_email_key)
@limiter.limit(_client_limit)
def submit(account_id: uuid.UUID):
    """Validate (422 with field messages), record the request unverified and mail the link;
    then the same page for every address. Past the limits on confirmation links to one
    address or from one account (mail.limit): 429 with Retry-After, nothing recorded."""
    account = _account(account_id)
    if account is None:
        return _no_such_form()
    kind = request.form.get("kind") or ""
    raw_email = request.form.get("email") or ""
    message = (request.form.get("message") or "").strip()
    errors = {}
    if kind not in KINDS:
        errors["kind"] = "Choose what you are asking for."
    try:
        email = normalize_email(raw_email)
    except ValueError as exc:
        errors["email"] = str(exc)
    if len(message) > MAX_MESSAGE:
        errors["message"] = f"Write at most {MAX_MESSAGE} characters ({len(message)} now)."
    if errors:
        return _form(account, 422, errors=errors, kind=kind, email=raw_email[:320], message=message)
    try:
        verification.submit(
            account,
            kind=kind,
            email=email,
            message=message or None,
            actor=verification.ACTOR,
        )
    except TooManyRequests as exc:
        db.session.rollback()
        return _too_many(exc)
    db.session.commit()  # the request and its link exist before the mail is queued
    return redirect(url_for("dsr_form.sent", account_id=account.public_id), code=303)


@bp.get("/privacy-request/<uuid:account_id>/sent")
@public
def sent(account_id: uuid.UUID):
    account = _account(account_id)
    if account is None:
        return _no_such_form()
    return render_page("dsr/form_sent.html", account=account, hours=verification.LINK_HOURS)


def _refused(exc: verification.LinkRefused):
    return render_page("dsr/verify.html", exc.status, refused=str(exc), account=exc.account)


@bp.get("/privacy-request/verify/<token>")
@public
def show_link(token: str):
    """A page with a button: mail scanners that open links do not use them up."""
    try:
        dsr, account = verification.peek(token)
    except verification.LinkRefused as exc:
        return _refused(exc)
    return render_page(
        "dsr/verify.html",
        token=token,
        request=dsr,
        account=account,
        wanted=verification.KIND_LABELS[dsr.kind],
    )


@bp.post("/privacy-request/verify")
@public
@limiter.limit(_client_limit)
def use_link():
    """Verify the request and queue its processing; show when it is due."""
    try:
        dsr, account = verification.confirm(
            request.form.get("token") or "", actor=verification.ACTOR
        )
    except verification.LinkRefused as exc:
        db.session.commit()  # a refused link stays used
        return _refused(exc)
    db.session.commit()
    return render_page("dsr/verified.html", request=dsr, account=account)
