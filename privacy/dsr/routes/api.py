"""REST API of the account's data-subject requests under /api/v1/requests (oversight and
exceptions for admins and members: list, detail with history, extend, reject, confirm)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import g

from privacy.api import Blueprint
from privacy.auth.permissions import requires
from privacy.database import utcnow
from privacy.dsr import erasure
from privacy.dsr import reminders
from privacy.dsr import services
from privacy.dsr.models import DataSubjectRequest
from privacy.dsr.schemas import ExceptionSchema
from privacy.dsr.schemas import ExtensionSchema
from privacy.dsr.schemas import InstructionSchema
from privacy.dsr.schemas import RejectionSchema
from privacy.dsr.schemas import RequestDetailSchema
from privacy.dsr.schemas import RequestListArgsSchema
from privacy.dsr.schemas import RequestPageSchema
from privacy.extensions import db
from privacy.pagination import decode_cursor
from privacy.pagination import page

bp = Blueprint(
    "requests",
    __name__,
    url_prefix="/api/v1",
    description="The account's data-subject requests: oversight, extensions, rejections.",
)


def _detail(request: DataSubjectRequest) -> DataSubjectRequest:
    """The request with what the detail shows beyond its columns (transient attributes)."""
    # The requester's e-mail and message are personal data the account's admins need to
    # answer; members see the request without them.
    admin = g.authority.role == "admin"
    request.requester_email = request.unseal_email() if admin else None
    request.requester_message = request.unseal_message() if admin else None
    request.callback_deliveries = reminders.deliveries_of(request)
    return request


@bp.get("/requests")
@requires("requests:read")
@bp.arguments(RequestListArgsSchema, location="query")
@bp.response(200, RequestPageSchema)
def list_requests(args):
    """The account's requests, newest first. `overdue=true` and `due_within_days` narrow to
    open requests (not completed, rejected or cancelled) by due date."""
    filters = {
        "status": args["status"],
        "kind": args["kind"],
        "after_id": decode_cursor(args["cursor"]),
        "limit": args["limit"] + 1,
    }
    if args["overdue"] or args["due_within_days"] is not None:
        now = utcnow()
        before = now if args["overdue"] else now + timedelta(days=args["due_within_days"])
        rows = reminders.list_due(g.account, before=before, **filters)
    else:
        rows = services.list_requests(g.account, **filters)
    return page(rows, args["limit"])


@bp.get("/requests/<uuid:request_id>")
@requires("requests:read")
@bp.response(200, RequestDetailSchema)
def get_request(request_id: uuid.UUID):
    """One request with its history, erasure instructions and status callbacks."""
    return _detail(services.get(g.account, request_id))


@bp.post("/requests/<uuid:request_id>/extension")
@requires("requests:manage")
@bp.arguments(ExtensionSchema)
@bp.response(200, RequestDetailSchema)
def extend_request(data, request_id: uuid.UUID):
    """Art. 12(3): extend once by 1 or 2 months, with a reason, before the first due date
    (409 otherwise). The requester is told (status callback or e-mail)."""
    request = services.get(g.account, request_id, for_update=True)
    services.extend(g.account, request, months=data["months"], reason=data["reason"], actor=g.actor)
    db.session.commit()
    return _detail(request)


@bp.post("/requests/<uuid:request_id>/rejection")
@requires("requests:manage")
@bp.arguments(RejectionSchema)
@bp.response(200, RequestDetailSchema)
def reject_request(data, request_id: uuid.UUID):
    """Refuse an open request with a reason; the requester is told the reason and the right
    to complain to a supervisory authority. 409 once the request is finished."""
    request = services.get(g.account, request_id, for_update=True)
    services.reject(g.account, request, reason=data["reason"], actor=g.actor)
    db.session.commit()
    return _detail(request)


@bp.post("/requests/<uuid:request_id>/exception")
@requires("requests:manage")
@bp.arguments(ExceptionSchema)
@bp.response(200, RequestDetailSchema)
def record_exception(data, request_id: uuid.UUID):
    """Refuse an erasure under an Art. 17(3) point (a-e) with a reason (422 for other
    kinds, 409 once the request is finished)."""
    request = services.get(g.account, request_id, for_update=True)
    services.reject(
        g.account, request, reason=data["reason"], exception=data["point"], actor=g.actor
    )
    db.session.commit()
    return _detail(request)


@bp.post("/requests/<uuid:request_id>/instructions/<uuid:instruction_id>/confirmation")
@requires("requests:manage")
@bp.response(200, InstructionSchema)
def confirm_instruction(request_id: uuid.UUID, instruction_id: uuid.UUID):
    """Art. 19: record that the system named by the instruction confirmed the erasure
    (409 when confirmed already)."""
    request = services.get(g.account, request_id, for_update=True)
    instruction = erasure.confirm_instruction(g.account, request, instruction_id, actor=g.actor)
    db.session.commit()
    return instruction
