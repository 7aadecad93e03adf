"""REST API of the account's documents: the DPA annex (list of sub-processors) and the
Art. 30(2) record of processing, as PDF (and JSON for the record); every download audited."""

from __future__ import annotations

import json

from flask import Response
from flask import g

from privacy.api import Blueprint
from privacy.auth.permissions import requires
from privacy.database import begin_write
from privacy.extensions import db
from privacy.extensions import limiter
from privacy.processors import documents

bp = Blueprint(
    "processor_documents",
    __name__,
    url_prefix="/api/v1",
    description="The account's DPA annex and Art. 30(2) record of processing.",
)

# Any member of the account; support staff with a read grant (pages only) likewise.
PERMISSION = "subprocessors:read"
# Downloads per account: rendering is cached by content, and this bounds what is left.
DOWNLOAD_LIMIT = "30 per minute"


def _account_key() -> str:
    return f"documents:{g.account.public_id}"


throttled = limiter.shared_limit(DOWNLOAD_LIMIT, scope="documents", key_func=_account_key)


def _download(name: str, data: bytes, mimetype: str) -> Response:
    """Audit the download (ids only), then send the file.

    The document was rendered before: the write lock (SQLite) is taken only now, for the
    audit row, not for the whole render (`begin_write`, not `@writes`)."""
    begin_write()
    documents.record_download(g.account, name=name, actor=g.actor)
    db.session.commit()
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/documents/subprocessor-annex.pdf")
@requires(PERMISSION)
@throttled
@bp.response(200, description="The DPA annex as PDF.", content_type="application/pdf")
def subprocessor_annex_pdf():
    """The DPA annex: the sub-processors effective for the account now, with their
    locations and transfer safeguards, and announced changes not yet in force. Audited."""
    return _download(
        "subprocessor-annex.pdf", documents.render_annex_pdf(g.account), "application/pdf"
    )


@bp.get("/documents/record-of-processing.pdf")
@requires(PERMISSION)
@throttled
@bp.response(200, description="The Art. 30(2) record as PDF.", content_type="application/pdf")
def record_of_processing_pdf():
    """The Art. 30(2) record the platform keeps as the account's processor. Audited."""
    return _download(
        "record-of-processing.pdf", documents.render_record_pdf(g.account), "application/pdf"
    )


@bp.get("/documents/record-of-processing.json")
@requires(PERMISSION)
@throttled
@bp.response(200, description="The Art. 30(2) record as JSON.", content_type="application/json")
def record_of_processing_json():
    """The same record as JSON (format privacy-record-of-processing/1). Audited."""
    text = json.dumps(documents.record(g.account), ensure_ascii=False, indent=2)
    return _download("record-of-processing.json", text.encode(), "application/json")
