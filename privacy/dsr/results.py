"""Delivering packages and receipts: an expiring link (OpenDSR `results_url`), every
download audited, an expired link a clear page."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import Blueprint
from flask import Response
from flask import current_app
from sqlalchemy import select

from privacy import links
from privacy.accounts.models import Account
from privacy.audit import services as audit
from privacy.auth.permissions import public
from privacy.crypto import token_hash
from privacy.database import begin_write
from privacy.database import utcnow
from privacy.dsr import package
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db
from privacy.pages import render_page

bp = Blueprint("dsr_results", __name__)
PATH = "/dsr/results/"
FILES = {
    "access": {"access.json": "application/json", "access.pdf": "application/pdf"},
    "portability": {"access.json": "application/json", "access.pdf": "application/pdf"},
    "erasure": {"receipt.json": "application/json", "receipt.pdf": "application/pdf"},
}


def _aad(request: DataSubjectRequest) -> bytes:
    return f"dsr_requests:{request.public_id}:download".encode()


def issue_link(request: DataSubjectRequest) -> str:
    """A fresh download link, valid PRIVACY_RESULTS_DAYS; only its hash looks it up."""
    secret = secrets.token_urlsafe(32)
    ring = current_app.extensions["keyring"]
    request.download_hash = token_hash(secret)
    # The key id travels with the ciphertext: keys may rotate between this and a read.
    request.download_ct = ring.current_id.encode() + b"\n" + ring.encrypt(secret, _aad(request))
    # key_id names the key of the e-mail and message; a request without them takes the
    # current one, so that key rotation finds the link too.
    request.key_id = request.key_id or ring.current_id
    days = current_app.config.get("RESULTS_DAYS", 7)
    request.download_expires_at = utcnow() + timedelta(days=days)
    return url_for_secret(secret)


def url_for_secret(secret: str) -> str:
    return links.external(f"{PATH}{secret}")


def url_of(request: DataSubjectRequest) -> str | None:
    """The current link (None when there is none); an expired link is still reported, and
    shows an expiry page."""
    if request.download_ct is None:
        return None
    ring = current_app.extensions["keyring"]
    key_id, _, ciphertext = bytes(request.download_ct).partition(b"\n")
    secret = ring.decrypt(ciphertext, key_id.decode(), _aad(request))
    return url_for_secret(secret)


def _find(secret: str) -> DataSubjectRequest | None:
    return db.session.scalar(
        select(DataSubjectRequest).where(DataSubjectRequest.download_hash == token_hash(secret))
    )


def _gone(message: str):
    return render_page("dsr/results_gone.html", 404, message=message)


@bp.get(f"{PATH}<secret>")
@public
def show(secret: str):
    request = _find(secret)
    if request is None:
        return _gone("This link is not valid. Ask for the documents again.")
    if request.download_expires_at <= utcnow():
        return _gone(
            "This link expired on "
            + request.download_expires_at.strftime("%d %B %Y")
            + ". Ask the service you made the request to for a new one."
        )
    account = db.session.get(Account, request.account_id)
    return render_page(
        "dsr/results.html",
        request=request,
        account=account,
        files=FILES[request.kind],
        secret=secret,
    )


@bp.get(f"{PATH}<secret>/<name>")
@public
def download(secret: str, name: str):
    request = _find(secret)
    if request is None or name not in FILES[request.kind]:
        return _gone("This link is not valid. Ask for the documents again.")
    if request.download_expires_at <= utcnow():
        return _gone(
            "This link has expired. Ask the service you made the request to for a new one."
        )
    account = db.session.get(Account, request.account_id)
    data = package.load_or_render(account, request, name)
    begin_write()
    audit.record(
        account,
        action="dsr.downloaded",
        object_type="dsr_request",
        object_id=request.public_id,
        data={"file": name},
        actor="link",
    )
    db.session.commit()
    response = Response(data, mimetype=FILES[request.kind][name])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response
