"""The OpenDSR v2 wire format, for the API's answers (privacy.dsr.routes.opendsr) and the
worker's status callbacks alike: times, the controller's id, the bodies of status answers
and their results, the validation of a submitted request, and signed answers.

Answers are signed (`X-OpenDSR-Signature` over the raw body, privacy.dsr.signing); errors take
the spec's shape `{"error": {"code", "message", "errors": [{"domain", "reason", "message"}]}}`
and never repeat an identity.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Response
from flask import current_app

from privacy import addresses
from privacy.accounts.models import Account
from privacy.database import utcnow
from privacy.dsr import results
from privacy.dsr import signing
from privacy.dsr.models import KINDS
from privacy.dsr.models import DataSubjectRequest
from privacy.errors import BadRequest
from privacy.extensions import db
from privacy.validation import normalize_email

API_VERSION = "2.0"
PREFIX = "/opendsr/v1"
IDENTITIES = [
    {"identity_type": "email", "identity_format": "raw"},
    {"identity_type": "email", "identity_format": "sha256"},
    {"identity_type": "controller_customer_id", "identity_format": "raw"},
]
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MAX_CALLBACKS = 10
CLOCK_SKEW = timedelta(minutes=5)
# A controller forwards what it received; a request older than the longest legal deadline
# (one month plus a two-month extension) would be overdue on arrival, so it is refused.
MAX_SUBMITTED_AGE = timedelta(days=92)


def rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def controller_id(dsr: DataSubjectRequest) -> str:
    return str(db.session.get(Account, dsr.account_id).public_id)


def results_fields(dsr: DataSubjectRequest) -> dict:
    url = results.url_of(dsr)
    if not url:
        return {}
    return {"results_url": url, "results_count": dsr.results_count or 0}


# -- answers -----------------------------------------------------------------------------


def signed(payload: dict, status: int, headers: dict | None = None) -> Response:
    """`payload` as JSON, signed over its exact bytes."""
    body = json.dumps(payload).encode()
    response = Response(body, status=status, mimetype="application/json")
    response.headers.update(signing.get().headers(body))
    response.headers.update(headers or {})
    return response


class OpenDsrError(BadRequest):
    """400 naming the fields at fault (OpenDSR's `errors` list)."""

    def __init__(self, message: str, reasons: list[tuple[str, str]]):
        super().__init__(message)
        self.reasons = reasons


def created_body(dsr: DataSubjectRequest, raw: bytes) -> dict:
    """The answer to a submitted request: the request as received (`raw`), and its
    processor signature."""
    return {
        "controller_id": controller_id(dsr),
        "expected_completion_time": rfc3339(dsr.due_at),
        "received_time": rfc3339(dsr.received_at),
        "encoded_request": base64.b64encode(raw).decode(),
        "subject_request_id": str(dsr.subject_request_id),
        "processor_signature": signing.get().sign(raw),
    }


def status_body(dsr: DataSubjectRequest) -> dict:
    """A request's status now, with its results once there are any."""
    return {
        "controller_id": controller_id(dsr),
        "expected_completion_time": rfc3339(dsr.due_at),
        "subject_request_id": str(dsr.subject_request_id),
        "request_status": dsr.opendsr_status,
        **results_fields(dsr),
    }


def cancelled_body(dsr: DataSubjectRequest) -> dict:
    """The answer to a cancellation, with the processor's signature of its other fields."""
    body = {
        "controller_id": controller_id(dsr),
        "received_time": rfc3339(dsr.received_at),
        "subject_request_id": str(dsr.subject_request_id),
    }
    body["processor_signature"] = signing.get().sign(json.dumps(body).encode())
    return body


# -- submitted requests ------------------------------------------------------------------


def parse(raw: bytes) -> dict:
    """The request body as validated values; OpenDsrError naming every field at fault."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise OpenDsrError(
            "The body is not valid JSON.", [("invalid_json", "Send JSON.")]
        ) from None
    if not isinstance(body, dict):
        raise OpenDsrError("The body must be a JSON object.", [("invalid_json", "Send an object.")])
    reasons: list[tuple[str, str]] = []
    out: dict = {}
    if body.get("regulation", "gdpr") != "gdpr":
        reasons.append(("unsupported_regulation", "regulation must be gdpr."))
    rid = body.get("subject_request_id")
    if not isinstance(rid, str) or not UUID4.match(rid):
        reasons.append(
            ("invalid_subject_request_id", "subject_request_id must be a lowercase UUID v4.")
        )
    else:
        out["subject_request_id"] = uuid.UUID(rid)
    kind = body.get("subject_request_type")
    if kind not in KINDS:
        reasons.append(
            ("unsupported_request_type", f"subject_request_type must be one of {', '.join(KINDS)}.")
        )
    out["kind"] = kind
    submitted = body.get("submitted_time")
    try:
        when = datetime.fromisoformat(str(submitted).replace("Z", "+00:00"))
        if when.tzinfo is None:
            raise ValueError
        when = when.astimezone(UTC)
        if when > utcnow() + CLOCK_SKEW:
            reasons.append(("invalid_submitted_time", "submitted_time lies in the future."))
        elif when < utcnow() - MAX_SUBMITTED_AGE:
            reasons.append(
                (
                    "invalid_submitted_time",
                    f"submitted_time is more than {MAX_SUBMITTED_AGE.days} days ago.",
                )
            )
        out["submitted_at"] = when
    except (TypeError, ValueError, OverflowError):
        reasons.append(("invalid_submitted_time", "submitted_time must be RFC 3339 with a zone."))
    identities = body.get("subject_identities")
    if not isinstance(identities, list) or not identities:
        reasons.append(("invalid_identity", "subject_identities must name the person."))
        identities = []
    for item in identities:
        if not isinstance(item, dict):
            reasons.append(("invalid_identity", "Each identity is an object."))
            continue
        kind_, fmt, value = (
            item.get("identity_type"),
            item.get("identity_format", "raw"),
            item.get("identity_value"),
        )
        if not isinstance(value, str) or not value:
            reasons.append(("invalid_identity", "identity_value must be a string."))
        elif kind_ == "email" and fmt == "raw":
            try:
                out["email"] = normalize_email(value)
            except ValueError:
                reasons.append(("invalid_identity", "An email identity is not a valid address."))
        elif kind_ == "email" and fmt == "sha256":
            if SHA256.match(value):
                out["email_sha256"] = value.lower()
            else:
                reasons.append(("invalid_identity", "A sha256 identity is 64 hex digits."))
        elif kind_ == "controller_customer_id" and fmt == "raw":
            if len(value) <= 200:
                out["customer_id"] = value
            else:
                reasons.append(
                    ("invalid_identity", "controller_customer_id is at most 200 characters.")
                )
        else:
            reasons.append(("unsupported_identity", "See /discovery for the supported identities."))
    urls = body.get("status_callback_urls") or []
    if (
        not isinstance(urls, list)
        or len(urls) > MAX_CALLBACKS
        or not all(callback_ok(u) for u in urls)
    ):
        reasons.append(
            ("invalid_status_callback_url", "status_callback_urls must be up to 10 https URLs.")
        )
    else:
        out["callback_urls"] = urls
    if reasons:
        raise OpenDsrError("The request is not valid.", reasons)
    return out


def callback_ok(url) -> bool:
    if not isinstance(url, str) or len(url) > 2000:
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    allowed = ("https",) if current_app.config.get("PRODUCTION") else ("https", "http")
    return parts.scheme in allowed and bool(host) and not addresses.refused_url(url)
