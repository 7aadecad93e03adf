"""Schemas of the sub-processor API: the public list, an account's view (effective list,
pending changes, objections), its notices, objections and webhook."""

from __future__ import annotations

import marshmallow as ma

from privacy.schemas import MAX_INTEGER
from privacy.schemas import DateTimeField
from privacy.schemas import JsonBoolean
from privacy.schemas import StrictSchema

MAX_REASON = 5000


class LocationSchema(ma.Schema):
    country = ma.fields.String(metadata={"description": "ISO 3166-1 alpha-2 code"})
    name = ma.fields.String(metadata={"description": "the country's name"})
    basis = ma.fields.String(metadata={"description": "eea, adequacy, scc or bcr"})
    safeguard = ma.fields.String(metadata={"description": "the decision or safeguard relied on"})


class SubProcessorSchema(ma.Schema):
    """A sub-processor as customers see it (dumped from services.notice_of)."""

    id = ma.fields.UUID()
    legal_name = ma.fields.String()
    address = ma.fields.String()
    contact = ma.fields.String()
    website = ma.fields.String(allow_none=True)
    purpose = ma.fields.String()
    data_categories = ma.fields.List(ma.fields.String())
    subject_categories = ma.fields.List(ma.fields.String())
    services = ma.fields.List(ma.fields.String())
    locations = ma.fields.List(ma.fields.Nested(LocationSchema))


class PublicListSchema(ma.Schema):
    list_version = ma.fields.Integer(metadata={"description": "0 before the first change"})
    updated_at = ma.fields.DateTime(allow_none=True)
    subprocessors = ma.fields.List(ma.fields.Nested(SubProcessorSchema))


class NamedSchema(ma.Schema):
    id = ma.fields.UUID()
    legal_name = ma.fields.String()


class ChangeSchema(ma.Schema):
    """An announced change (a list version) the account is waiting for."""

    list_version = ma.fields.Integer()
    change = ma.fields.String(metadata={"description": "added, replaced or removed"})
    subprocessor = ma.fields.Nested(NamedSchema)
    replaces = ma.fields.Nested(NamedSchema, allow_none=True)
    announced_at = ma.fields.DateTime()
    effective_at = ma.fields.DateTime(
        metadata={"description": "end of the notice period: objections are possible until then"}
    )
    may_object = ma.fields.Boolean(metadata={"description": "the account may still object"})
    notice = ma.fields.Dict(metadata={"description": "what was announced, frozen"})


class ObjectionSchema(ma.Schema):
    id = ma.fields.UUID(attribute="public_id")
    list_version = ma.fields.Function(lambda o: o.list_version.number)
    subprocessor = ma.fields.Function(
        lambda o: {"id": str(o.subprocessor.public_id), "legal_name": o.subprocessor.legal_name},
        metadata={"type": "object"},
    )
    reason = ma.fields.String()
    state = ma.fields.String(metadata={"description": "open or resolved"})
    outcome = ma.fields.String(
        allow_none=True, metadata={"description": "alternative, termination or withdrawn"}
    )
    resolution = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    created_by = ma.fields.String()
    resolved_at = ma.fields.DateTime(allow_none=True)


class AccountListArgsSchema(StrictSchema):
    at = DateTimeField(
        load_default=None,
        metadata={"description": "RFC 3339 time: what was effective then (default now)"},
    )


class AccountListSchema(ma.Schema):
    at = ma.fields.DateTime()
    list_version = ma.fields.Integer(metadata={"description": "newest version announced by `at`"})
    effective = ma.fields.List(
        ma.fields.Nested(SubProcessorSchema),
        metadata={"description": "the sub-processors that may process the account's data"},
    )
    pending = ma.fields.List(ma.fields.Nested(ChangeSchema))
    objections = ma.fields.List(ma.fields.Nested(ObjectionSchema))


class NoticeSchema(ma.Schema):
    list_version = ma.fields.Function(lambda n: n.list_version.number)
    change = ma.fields.Function(lambda n: n.list_version.change)
    subprocessor = ma.fields.Function(
        lambda n: n.list_version.notice["subprocessor"]["legal_name"],
        metadata={"type": "string"},
    )
    notified_at = ma.fields.DateTime()
    effective_at = ma.fields.Function(
        lambda n: n.list_version.effective_at.isoformat(), metadata={"type": "string"}
    )
    read_at = ma.fields.DateTime(allow_none=True)
    webhook = ma.fields.Function(
        lambda n: {
            "state": n.webhook_state,
            "attempts": n.webhook_attempts,
            "error": n.webhook_error,
        },
        metadata={"type": "object"},
    )


class ObjectionCreateSchema(StrictSchema):
    list_version = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=MAX_INTEGER)
    )
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=MAX_REASON))


class WebhookSchema(ma.Schema):
    url = ma.fields.String()
    created_at = ma.fields.DateTime()
    secret = ma.fields.String(
        metadata={"description": "only when the webhook is created or its secret rotated"}
    )


# What the API document promises and the schema checks, before webhooks.check_url's rules
# (scheme and public host in production): a host name or IPv4 address, a port, a path and a
# query of URL characters.
_URL_CHARS = r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]"
WEBHOOK_URL = rf"^https?://[A-Za-z0-9.-]+(:[0-9]{{1,5}})?(/{_URL_CHARS}*)?(\?({_URL_CHARS}|\?)*)?$"


class WebhookUpdateSchema(StrictSchema):
    url = ma.fields.String(
        required=True,
        validate=[
            ma.validate.Length(min=1, max=2000),
            ma.validate.Regexp(WEBHOOK_URL, error="An absolute http or https URL, no fragment."),
        ],
        metadata={
            "pattern": WEBHOOK_URL,
            "description": "http or https (https and a public host in production), "
            "no credentials, no fragment",
        },
    )
    rotate_secret = JsonBoolean(
        load_default=False, metadata={"description": "true: a new secret, shown in the answer"}
    )
