"""REST API of the inventory under /api/v1: subjects, lookup, bulk import and export, systems."""

from __future__ import annotations

import csv
import io
import json
import uuid

from flask import Response
from flask import current_app
from flask import g
from flask import request
from flask import stream_with_context

from privacy import logs
from privacy.accounts.models import Account
from privacy.api import Blueprint
from privacy.auth.permissions import requires
from privacy.database import begin_write
from privacy.database import get_for_account
from privacy.errors import BadRequest
from privacy.extensions import db
from privacy.inventory import imports
from privacy.inventory import services
from privacy.inventory.models import Subject
from privacy.inventory.models import System
from privacy.inventory.schemas import ExportArgsSchema
from privacy.inventory.schemas import ImportResultSchema
from privacy.inventory.schemas import LookupSchema
from privacy.inventory.schemas import SubjectCreateSchema
from privacy.inventory.schemas import SubjectExportSchema
from privacy.inventory.schemas import SubjectListArgsSchema
from privacy.inventory.schemas import SubjectPageSchema
from privacy.inventory.schemas import SubjectSchema
from privacy.inventory.schemas import SubjectUpdateSchema
from privacy.inventory.schemas import SystemCreateSchema
from privacy.inventory.schemas import SystemPageSchema
from privacy.inventory.schemas import SystemSchema
from privacy.inventory.schemas import SystemUpdateSchema
from privacy.pagination import decode_cursor
from privacy.pagination import page
from privacy.schemas import PageArgsSchema

EXPORT_FIELDS = (
    "id",
    "name",
    "email",
    "external_ref",
    "source",
    "systems",
    "created_at",
    "updated_at",
)

bp = Blueprint(
    "inventory",
    __name__,
    url_prefix="/api/v1",
    description="PII inventory: data subjects and the systems that hold them.",
)


@bp.get("/subjects")
@requires("inventory:read")
@bp.arguments(SubjectListArgsSchema, location="query")
@bp.response(200, SubjectPageSchema)
def list_subjects(args):
    """List subjects, oldest first, with cursor pagination."""
    rows = services.list_subjects(
        g.account,
        after_id=decode_cursor(args["cursor"]),
        limit=args["limit"],
        system=args["system"],
        external_ref=args["external_ref"],
    )
    return page(rows, args["limit"])


@bp.post("/subjects")
@requires("inventory:write")
@bp.arguments(SubjectCreateSchema)
@bp.response(201, SubjectSchema)
def create_subject(data):
    """Add a subject. 409 if the e-mail is already in the account."""
    subject = services.create_subject(g.account, **data, actor=g.actor)
    db.session.commit()
    return subject


@bp.post("/subjects/lookup")
@requires("inventory:read")
@bp.arguments(LookupSchema)
@bp.response(200, SubjectSchema)
def lookup_subject(data):
    """Exact lookup by e-mail, sent in the body so it never lands in a URL."""
    return services.find_by_email(g.account, data["email"])


@bp.get("/subjects/<uuid:subject_id>")
@requires("inventory:read")
@bp.response(200, SubjectSchema)
def get_subject(subject_id: uuid.UUID):
    return get_for_account(Subject, subject_id, g.account)


@bp.patch("/subjects/<uuid:subject_id>")
@requires("inventory:write")
@bp.arguments(SubjectUpdateSchema)
@bp.response(200, SubjectSchema)
def update_subject(data, subject_id: uuid.UUID):
    subject = get_for_account(Subject, subject_id, g.account)
    services.update_subject(g.account, subject, changes=data, actor=g.actor)
    db.session.commit()
    return subject


@bp.delete("/subjects/<uuid:subject_id>")
@requires("inventory:write")
@bp.response(204)
def delete_subject(subject_id: uuid.UUID):
    services.delete_subject(
        g.account, get_for_account(Subject, subject_id, g.account), actor=g.actor
    )
    db.session.commit()


@bp.post("/subjects/import")
@requires("inventory:write")
@bp.doc(
    requestBody={
        "required": True,
        "description": "CSV with a header (name,email,external_ref,source,systems; systems "
        "separated by ';') or JSON lines with the same keys. All rows or none.",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
)
@bp.response(201, ImportResultSchema)
def import_subjects():
    """Bulk import: every row is validated first; any bad row rejects the whole upload."""
    config = current_app.config
    request.max_content_length = config["MAX_IMPORT_BYTES"]
    try:
        rows = imports.rows(request.stream, request.mimetype)
        import_id, count = services.import_subjects(
            g.account, rows, max_rows=config["MAX_IMPORT_ROWS"], actor=g.actor
        )
    except imports.UploadError as exc:
        raise BadRequest(str(exc)) from None
    db.session.commit()
    return {"import_id": import_id, "imported": count}


@bp.get("/subjects/export")
@requires("inventory:read")
@bp.arguments(ExportArgsSchema, location="query")
@bp.response(
    200, description="JSON lines (default) or CSV, streamed.", content_type="application/x-ndjson"
)
def export_subjects(args):
    """Stream every subject of the account; what was sent is audited once the stream ends.

    The body is written after this view has returned, when the request's database session
    and its `g` are gone (gunicorn): the stream reads through a session of its own, from
    ids and the actor taken here. Its audit row is written with `begin_write`, not `@writes`,
    so that the stream's reads do not hold SQLite's write lock while the client reads.
    """
    fmt = args["format"]
    account_id = g.account.id
    actor = g.actor
    request_id = logs.request_id()
    schema = SubjectExportSchema()

    def lines(account: Account):
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            yield buffer.getvalue()
        for subject in services.iter_subjects(account):
            row = schema.dump(subject)
            if fmt == "jsonl":
                yield json.dumps(row, ensure_ascii=False) + "\n"
                continue
            row["systems"] = ";".join(row["systems"])
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(row)
            yield buffer.getvalue()

    def generate():
        account = db.session.get(Account, account_id)  # in the stream's own session
        sent, complete = 0, False
        chunk: list[str] = []
        try:
            for line in lines(account):
                chunk.append(line)
                sent += 1
                if len(chunk) >= 500:
                    yield "".join(chunk)
                    chunk = []
            yield "".join(chunk)
            complete = True
        finally:
            sent -= fmt == "csv"  # the header line
            begin_write()  # on SQLite, wait for the write lock instead of failing on it
            with logs.bound_request_id(request_id):
                services.record_export(
                    account, format=fmt, count=sent, complete=complete, actor=actor
                )
            db.session.commit()

    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return Response(
        stream_with_context(generate()),
        mimetype=mimetype,
        headers={"Content-Disposition": f"attachment; filename=subjects.{fmt}"},
    )


@bp.get("/systems")
@requires("inventory:read")
@bp.arguments(PageArgsSchema, location="query")
@bp.response(200, SystemPageSchema)
def list_systems(args):
    rows = services.list_systems(
        g.account, after_id=decode_cursor(args["cursor"]), limit=args["limit"]
    )
    return page(rows, args["limit"])


@bp.post("/systems")
@requires("inventory:write")
@bp.arguments(SystemCreateSchema)
@bp.response(201, SystemSchema)
def create_system(data):
    """Register a data store that holds the account's personal data."""
    system = services.create_system(g.account, **data, actor=g.actor)
    db.session.commit()
    return system


@bp.get("/systems/<uuid:system_id>")
@requires("inventory:read")
@bp.response(200, SystemSchema)
def get_system(system_id: uuid.UUID):
    return get_for_account(System, system_id, g.account)


@bp.patch("/systems/<uuid:system_id>")
@requires("inventory:write")
@bp.arguments(SystemUpdateSchema)
@bp.response(200, SystemSchema)
def update_system(data, system_id: uuid.UUID):
    system = get_for_account(System, system_id, g.account)
    services.update_system(g.account, system, changes=data, actor=g.actor)
    db.session.commit()
    return system


@bp.delete("/systems/<uuid:system_id>")
@requires("inventory:write")
@bp.response(204)
def delete_system(system_id: uuid.UUID):
    services.delete_system(g.account, get_for_account(System, system_id, g.account), actor=g.actor)
    db.session.commit()
