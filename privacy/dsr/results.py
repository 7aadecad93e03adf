"""Results links: the expiring link (OpenDSR `results_url`) to a request's package or
receipt, the request a link names, and what a link offers. The pages behind the link are
privacy.dsr.routes.results."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from privacy import links
from privacy.accounts.models import Account
from privacy.audit import services as audit
from privacy.crypto import token_hash
from privacy.database import utcnow
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db

PATH = "/dsr/results/"
FILES = {
    "access": {"access.json": "application/json", "access.pdf": "application/pdf"},
    "portability": {"access.json": "application/json", "access.pdf": "application/pdf"},
    "erasure": {"receipt.json": "application/json", "receipt.pdf": "application/pdf"},
}
# Who the audit log names for a download: whoever holds the link.
ACTOR = "link"


def issue_link(request: DataSubjectRequest) -> str:
    """A fresh download link, valid PRIVACY_RESULTS_DAYS; only its hash looks it up."""
    secret = secrets.token_urlsafe(32)
    request.download_hash = token_hash(secret)
    request.seal_download(secret)
    days = current_app.config.get("RESULTS_DAYS", 7)
    request.download_expires_at = utcnow() + timedelta(days=days)
    return url_for_secret(secret)


def url_for_secret(secret: str) -> str:
    return links.external(f"{PATH}{secret}")


def url_of(request: DataSubjectRequest) -> str | None:
    """The current link (None when there is none); an expired link is still reported, and
    shows an expiry page."""
    secret = request.unseal_download()
    return url_for_secret(secret) if secret is not None else None


def find(secret: str) -> DataSubjectRequest | None:
    """The request whose link has this secret (expired or not); None for no such link."""
    return db.session.scalar(
        select(DataSubjectRequest).where(DataSubjectRequest.download_hash == token_hash(secret))
    )


def record_download(
    account: Account, request: DataSubjectRequest, name: str, *, actor: str
) -> None:
    """Audit one download of one of the request's documents."""
    audit.record(
        account,
        action="dsr.downloaded",
        object_type="dsr_request",
        object_id=request.public_id,
        data={"file": name},
        actor=actor,
    )
