"""REST API of the sub-processor register: the public list, and each account's view."""

from __future__ import annotations

from flask import g

from privacy.api import Blueprint
from privacy.auth.permissions import public
from privacy.auth.permissions import requires
from privacy.database import utcnow
from privacy.errors import NotFound
from privacy.extensions import db
from privacy.processors import models  # noqa: F401 - the register's tables
from privacy.processors import notices
from privacy.processors import services
from privacy.processors import webhooks
from privacy.processors.schemas import AccountListArgsSchema
from privacy.processors.schemas import AccountListSchema
from privacy.processors.schemas import NoticeSchema
from privacy.processors.schemas import ObjectionCreateSchema
from privacy.processors.schemas import ObjectionSchema
from privacy.processors.schemas import PublicListSchema
from privacy.processors.schemas import WebhookSchema
from privacy.processors.schemas import WebhookUpdateSchema

bp = Blueprint(
    "processors",
    __name__,
    url_prefix="/api/v1",
    description="Sub-processors: the public list, and what is effective for the account.",
)


@bp.get("/public/subprocessors")
@public
@bp.response(200, PublicListSchema)
def get_public_list():
    """The platform's sub-processors: purpose, data categories, locations with the transfer
    basis, and the number of the newest list version. No authentication."""
    return services.public_list(utcnow().date())


@bp.get("/subprocessors")
@requires("subprocessors:read")
@bp.arguments(AccountListArgsSchema, location="query")
@bp.response(200, AccountListSchema)
def get_account_list(args):
    """What is effective for the account (or was, with `at`), the announced changes pending
    with the dates they take effect, and the account's objections."""
    return notices.account_view(g.account, args["at"])


@bp.get("/subprocessors/notices")
@requires("subprocessors:read")
@bp.response(200, NoticeSchema(many=True))
def list_notices():
    """Which list versions the account was notified of, and when; newest first."""
    return notices.notices_for(g.account)


@bp.post("/subprocessors/objections")
@requires("subprocessors:object")
@bp.arguments(ObjectionCreateSchema)
@bp.response(201, ObjectionSchema)
def create_objection(data):
    """Object to a change within its notice period (409 after it, or twice): the
    sub-processor is then blocked for the account and the platform's DPO is told."""
    version = notices.version_by_number(data["list_version"])
    objection = notices.object_to(g.account, version, reason=data["reason"], actor=g.actor)
    db.session.commit()
    return objection


def _webhook(webhook, secret: str | None = None) -> dict:
    out = {"url": webhook.url, "created_at": webhook.created_at}
    if secret is not None:
        out["secret"] = secret
    return out


@bp.get("/subprocessors/webhook")
@requires("subprocessors:object")
@bp.response(200, WebhookSchema)
def get_webhook():
    """The account's webhook (never its secret); 404 when none is configured."""
    webhook = webhooks.get(g.account)
    if webhook is None:
        raise NotFound("No webhook is configured.")
    return _webhook(webhook)


@bp.put("/subprocessors/webhook")
@requires("subprocessors:object")
@bp.arguments(WebhookUpdateSchema)
@bp.response(200, WebhookSchema)
@bp.alt_response(201, schema=WebhookSchema, description="Created, with its secret")
def put_webhook(data):
    """Set the URL change notices are POSTed to. A new webhook (201) or `rotate_secret`
    answers with the signing secret: it is shown this once."""
    created = webhooks.get(g.account) is None
    webhook, secret = webhooks.configure(g.account, url=data["url"], actor=g.actor)
    if data["rotate_secret"] and not created:
        webhook, secret = webhooks.rotate(g.account, actor=g.actor)
    db.session.commit()
    return _webhook(webhook, secret), 201 if created else 200


@bp.delete("/subprocessors/webhook")
@requires("subprocessors:object")
@bp.response(204)
def delete_webhook():
    """Remove the webhook; notices still waiting for delivery are not sent."""
    webhooks.delete(g.account, actor=g.actor)
    db.session.commit()
