"""Pages of the signed-in account: members (invite, role, remove) and API tokens.

Ids travel in form bodies, never in URLs.
"""

from __future__ import annotations

import uuid

from flask import Blueprint
from flask import g
from flask import redirect
from flask import request
from flask import url_for

from privacy.accounts import services
from privacy.accounts.models import ROLES
from privacy.accounts.models import SCOPES
from privacy.accounts.models import ApiToken
from privacy.accounts.models import Member
from privacy.auth.permissions import page
from privacy.auth.signin import invitation_open
from privacy.database import get_for_account
from privacy.errors import AppError
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.pages import error_text
from privacy.pages import render_page

bp = Blueprint("account_pages", __name__)


def _form_id(name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(request.form.get(name, ""))
    except ValueError:
        raise ValidationFailed(errors={name: ["Not a valid id."]}) from None


def _members_page(status: int = 200, **context):
    members = services.list_members(g.account)
    return render_page(
        "accounts/members.html",
        status,
        members=members,
        roles=ROLES,
        invitation_open=invitation_open,
        **context,
    )


@bp.get("/members")
@page("members:read")
def members():
    return _members_page()


@bp.post("/members")
@page("members:write")
def invite():
    try:
        services.invite_member(
            g.account,
            email=request.form.get("email", ""),
            name=request.form.get("name") or None,
            role=request.form.get("role", "member"),
            actor=g.actor,
            granter=g.authority,
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _members_page(exc.code, error=error_text(exc))
    return redirect(url_for("account_pages.members", sent=1), code=303)


@bp.post("/members/role")
@page("members:write")
def change_role():
    try:
        member = get_for_account(Member, _form_id(), g.account)
        services.change_role(
            g.account,
            member,
            role=request.form.get("role", ""),
            actor=g.actor,
            granter=g.authority,
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _members_page(exc.code, error=error_text(exc))
    return redirect(url_for("account_pages.members"), code=303)


@bp.post("/members/remove")
@page("members:write")
def remove():
    try:
        member = get_for_account(Member, _form_id(), g.account)
        services.remove_member(g.account, member, actor=g.actor)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _members_page(exc.code, error=error_text(exc))
    return redirect(url_for("account_pages.members"), code=303)


@bp.post("/members/invitation")
@page("members:write")
def resend_invitation():
    try:
        member = get_for_account(Member, _form_id(), g.account)
        services.resend_invitation(g.account, member, actor=g.actor, granter=g.authority)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _members_page(exc.code, error=error_text(exc))
    return redirect(url_for("account_pages.members", sent=1), code=303)


def _tokens_page(status: int = 200, **context):
    return render_page(
        "accounts/tokens.html",
        status,
        tokens=services.list_tokens(g.account),
        roles=ROLES,
        scopes=SCOPES,
        **context,
    )


@bp.get("/tokens")
@page("tokens:manage")
def tokens():
    return _tokens_page()


@bp.post("/tokens")
@page("tokens:manage")
def create_token():
    scopes = request.form.getlist("scopes") or None
    member = g.principal.member
    try:
        name = (request.form.get("name") or "").strip()
        if not name or len(name) > 100:
            raise ValidationFailed(errors={"name": ["Name must be 1 to 100 characters."]})
        token, secret = services.create_token(
            g.account,
            name=name,
            role=request.form.get("role", "member"),
            scopes=scopes,
            member=member,
            actor=g.actor,
            granter=g.authority,
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _tokens_page(exc.code, error=error_text(exc))
    # Shown on this answer only; the page after a reload no longer has it.
    return _tokens_page(201, created=token, secret=secret)


@bp.post("/tokens/revoke")
@page("tokens:manage")
def revoke_token():
    try:
        token = get_for_account(ApiToken, _form_id(), g.account)
        services.revoke_token(g.account, token, actor=g.actor)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _tokens_page(exc.code, error=error_text(exc))
    return redirect(url_for("account_pages.tokens"), code=303)
