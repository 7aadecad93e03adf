"""GET /api/v1/audit: the account's audit events for its admins, newest first."""

from __future__ import annotations

from flask import g

from privacy.api import Blueprint
from privacy.audit import services
from privacy.audit.schemas import AuditArgsSchema
from privacy.audit.schemas import AuditEventSchema
from privacy.auth.permissions import requires
from privacy.pagination import decode_cursor
from privacy.pagination import page
from privacy.schemas import PageArgsSchema
from privacy.schemas import page_schema

bp = Blueprint("audit", __name__, url_prefix="/api/v1", description="The account's audit log.")


@bp.get("/access-changes")
@requires("audit:read")
@bp.arguments(PageArgsSchema, location="query")
@bp.response(200, page_schema(AuditEventSchema, "AccessChangesPage"))
def list_access_changes(args):
    """Every change to members, roles, tokens and support grants, newest first."""
    events = services.list_events(
        g.account,
        after_id=decode_cursor(args["cursor"]),
        limit=args["limit"] + 1,
        actions=services.ACCESS_CHANGES,
    )
    return page(events, args["limit"])


@bp.get("/audit")
@requires("audit:read")
@bp.arguments(AuditArgsSchema, location="query")
@bp.response(200, page_schema(AuditEventSchema, "AuditPage"))
def list_audit(args):
    events = services.list_events(
        g.account,
        after_id=decode_cursor(args["cursor"]),
        limit=args["limit"] + 1,
        action=args["action"],
        object_id=args["object_id"],
        since=args["since"],
    )
    return page(events, args["limit"])
