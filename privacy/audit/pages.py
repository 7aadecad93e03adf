"""The access-control changes page: members, roles, tokens and grants, as the audit log has them."""

from __future__ import annotations

from flask import Blueprint
from flask import g

from privacy.audit import services
from privacy.auth.permissions import page
from privacy.pages import render_page

bp = Blueprint("audit_pages", __name__)

SHOWN = 500


@bp.get("/access-changes")
@page("audit:read")
def access_changes():
    events = services.list_events(
        g.account, after_id=None, limit=SHOWN, actions=services.ACCESS_CHANGES
    )
    return render_page("audit/access_changes.html", events=events, shown=SHOWN)
