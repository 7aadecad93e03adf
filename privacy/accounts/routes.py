"""REST API of the caller's account: the account itself, members, and API tokens."""

from __future__ import annotations

import uuid

from flask import g

from privacy.accounts import services
from privacy.accounts.models import ApiToken
from privacy.accounts.models import Member
from privacy.accounts.schemas import AccountSchema
from privacy.accounts.schemas import MemberCreateSchema
from privacy.accounts.schemas import MemberSchema
from privacy.accounts.schemas import MemberUpdateSchema
from privacy.accounts.schemas import TokenCreatedSchema
from privacy.accounts.schemas import TokenCreateSchema
from privacy.accounts.schemas import TokenSchema
from privacy.api import Blueprint
from privacy.auth.permissions import requires
from privacy.database import for_account
from privacy.database import get_for_account
from privacy.extensions import db

bp = Blueprint(
    "accounts",
    __name__,
    url_prefix="/api/v1",
    description="The caller's account, its members and API tokens.",
)


@bp.get("/account")
@requires("members:read")
@bp.response(200, AccountSchema)
def get_account():
    return g.account


@bp.get("/members")
@requires("members:read")
@bp.response(200, MemberSchema(many=True))
def list_members():
    return services.list_members(g.account)


@bp.post("/members")
@requires("members:write", hands_on=True)
@bp.arguments(MemberCreateSchema)
@bp.response(201, MemberSchema)
def add_member(data):
    """Add a member and e-mail the invitation; its link signs them in the first time."""
    member = services.invite_member(g.account, **data, actor=g.actor, granter=g.authority)
    db.session.commit()
    return member


@bp.post("/members/<uuid:member_id>/invitation")
@requires("members:write", hands_on=True)
@bp.response(200, MemberSchema)
def resend_invitation(member_id: uuid.UUID):
    """A fresh invitation for a member who has not signed in yet (409 once they have)."""
    member = get_for_account(Member, member_id, g.account)
    services.resend_invitation(g.account, member, actor=g.actor, granter=g.authority)
    db.session.commit()
    return member


@bp.get("/members/<uuid:member_id>")
@requires("members:read")
@bp.response(200, MemberSchema)
def get_member(member_id: uuid.UUID):
    return get_for_account(Member, member_id, g.account)


@bp.patch("/members/<uuid:member_id>")
@requires("members:write", hands_on=True)
@bp.arguments(MemberUpdateSchema)
@bp.response(200, MemberSchema)
def change_role(data, member_id: uuid.UUID):
    """Change a member's role. 409 when it would leave the account without an admin."""
    member = get_for_account(Member, member_id, g.account)
    services.change_role(g.account, member, role=data["role"], actor=g.actor, granter=g.authority)
    db.session.commit()
    return member


@bp.delete("/members/<uuid:member_id>")
@requires("members:write")
@bp.response(204)
def remove_member(member_id: uuid.UUID):
    """Remove a member and revoke their tokens. 409 for the last admin."""
    services.remove_member(g.account, get_for_account(Member, member_id, g.account), actor=g.actor)
    db.session.commit()


@bp.get("/tokens")
@requires("tokens:manage")
@bp.response(200, TokenSchema(many=True))
def list_tokens():
    return services.list_tokens(g.account)


@bp.post("/tokens")
@requires("tokens:manage", hands_on=True)
@bp.arguments(TokenCreateSchema)
@bp.response(201, TokenCreatedSchema)
def create_token(data):
    """Create a token; the response carries the secret this one time only."""
    member_id = g.authority.member_id
    member = db.session.scalar(for_account(Member, g.account).where(Member.id == member_id))
    token, secret = services.create_token(
        g.account, **data, member=member, actor=g.actor, granter=g.authority
    )
    db.session.commit()
    token.secret = secret  # transient, never stored
    return token


@bp.get("/tokens/<uuid:token_id>")
@requires("tokens:manage")
@bp.response(200, TokenSchema)
def get_token(token_id: uuid.UUID):
    return get_for_account(ApiToken, token_id, g.account)


@bp.delete("/tokens/<uuid:token_id>")
@requires("tokens:manage")
@bp.response(200, TokenSchema)
def revoke_token(token_id: uuid.UUID):
    """Revoke a token; it is refused (401) from the next request on."""
    token = get_for_account(ApiToken, token_id, g.account)
    services.revoke_token(g.account, token, actor=g.actor)
    db.session.commit()
    return token
