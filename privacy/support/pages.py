"""Support pages: customer admins grant and revoke support access and see every use;
operators see their grants and enter an account through one."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Blueprint
from flask import g
from flask import redirect
from flask import request
from flask import url_for
from sqlalchemy import select

from privacy.audit import services as audit
from privacy.auth import sessions
from privacy.auth.permissions import OPERATOR
from privacy.auth.permissions import page
from privacy.database import get_for_account
from privacy.database import utcnow
from privacy.errors import AppError
from privacy.errors import NotFound
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.pages import error_text
from privacy.pages import render_page
from privacy.support import services
from privacy.support.models import ACCESS
from privacy.support.models import SupportGrant

bp = Blueprint("support_pages", __name__)

USES_SHOWN = 200


def _grants_page(status: int = 200, **context):
    grants = services.list_grants(g.account)
    uses = audit.list_events(
        g.account,
        after_id=None,
        limit=USES_SHOWN,
        actions=("support.opened", "support.access", "support.left"),
    )
    return render_page(
        "support/grants.html",
        status,
        grants=grants,
        uses=uses,
        now=utcnow(),
        access_levels=ACCESS,
        operators=services.list_operators(),
        **context,
    )


@bp.get("/support-grants")
@page("grants:manage")
def grants():
    return _grants_page()


@bp.post("/support-grants")
@page("grants:manage")
def create_grant():
    try:
        try:
            hours = int(request.form.get("hours", ""))
        except ValueError:
            raise ValidationFailed(errors={"hours": ["Give a whole number of hours."]}) from None
        if not 1 <= hours <= 72:
            raise ValidationFailed(errors={"hours": ["A grant lasts 1 to 72 hours."]})
        services.create_grant(
            g.account,
            operator_email=request.form.get("operator_email", ""),
            access=request.form.get("access", "read"),
            expires_at=utcnow() + timedelta(hours=hours),
            reason=request.form.get("reason", ""),
            actor=g.actor,
            granter=g.authority,
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _grants_page(exc.code, error=error_text(exc))
    return redirect(url_for("support_pages.grants"), code=303)


@bp.post("/support-grants/revoke")
@page("grants:manage")
def revoke_grant():
    try:
        try:
            grant_id = uuid.UUID(request.form.get("id", ""))
        except ValueError:
            raise ValidationFailed(errors={"id": ["Not a valid id."]}) from None
        grant = get_for_account(SupportGrant, grant_id, g.account)
        services.revoke_grant(g.account, grant, actor=g.actor)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _grants_page(exc.code, error=error_text(exc))
    return redirect(url_for("support_pages.grants"), code=303)


# -- the operator's side ----------------------------------------------------------------


@bp.get("/support")
@page(OPERATOR)
def console():
    principal = g.principal
    return render_page(
        "support/console.html",
        grants=services.active_grants_for(principal.operator),
    )


@bp.post("/support/open")
@page(OPERATOR)
def open_account():
    """Enter a customer account through one of the operator's active grants."""
    principal = g.principal
    try:
        grant_id = uuid.UUID(request.form.get("id", ""))
    except ValueError:
        raise ValidationFailed(errors={"id": ["Not a valid id."]}) from None
    grant = db.session.scalar(
        select(SupportGrant).where(
            SupportGrant.public_id == grant_id,
            SupportGrant.operator_id == principal.operator.id,
        )
    )
    if grant is None or not grant.active(utcnow()):
        raise NotFound("No active support grant of yours has this id.")
    sessions.open_account(principal, grant)
    return redirect(url_for("account_pages.members"), code=303)


@bp.post("/support/leave")
@page(OPERATOR)
def leave_account():
    sessions.leave_account(g.principal)
    return redirect(url_for("support_pages.console"), code=303)
