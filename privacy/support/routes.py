"""REST API of support grants: customer admins let platform staff in, and take it back."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import g

from privacy.api import Blueprint
from privacy.auth.permissions import requires
from privacy.database import get_for_account
from privacy.database import utcnow
from privacy.extensions import db
from privacy.support import services
from privacy.support.models import SupportGrant
from privacy.support.schemas import GrantCreateSchema
from privacy.support.schemas import GrantSchema
from privacy.support.schemas import OperatorSchema

bp = Blueprint(
    "support",
    __name__,
    url_prefix="/api/v1",
    description="Support-access grants: which platform operator may enter the account, how long.",
)


def _with_uses(grant: SupportGrant) -> SupportGrant:
    grant.uses = services.grant_uses(g.account, grant)
    return grant


@bp.get("/support-grants")
@requires("grants:manage")
@bp.response(200, GrantSchema(many=True))
def list_grants():
    """Every grant of the account, newest first, with how often each was used."""
    return [_with_uses(grant) for grant in services.list_grants(g.account)]


@bp.post("/support-grants")
@requires("grants:manage", hands_on=True)
@bp.arguments(GrantCreateSchema)
@bp.response(201, GrantSchema)
def create_grant(data):
    """Let one operator in for at most 72 hours; read-only unless `access` is `write`."""
    grant = services.create_grant(
        g.account,
        operator_email=data["operator_email"],
        access=data["access"],
        expires_at=utcnow() + timedelta(hours=data["hours"]),
        reason=data["reason"],
        actor=g.actor,
        granter=g.authority,
    )
    db.session.commit()
    return _with_uses(grant)


@bp.get("/support-grants/<uuid:grant_id>")
@requires("grants:manage")
@bp.response(200, GrantSchema)
def get_grant(grant_id: uuid.UUID):
    return _with_uses(get_for_account(SupportGrant, grant_id, g.account))


@bp.delete("/support-grants/<uuid:grant_id>")
@requires("grants:manage")
@bp.response(200, GrantSchema)
def revoke_grant(grant_id: uuid.UUID):
    """Revoke at once; the operator's next request in the account is refused."""
    grant = get_for_account(SupportGrant, grant_id, g.account)
    services.revoke_grant(g.account, grant, actor=g.actor)
    db.session.commit()
    return _with_uses(grant)


@bp.get("/support-operators")
@requires("grants:manage")
@bp.response(200, OperatorSchema(many=True))
def list_operators():
    """The platform's support staff a grant can name."""
    return services.list_operators()
