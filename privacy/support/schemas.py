"""Schemas of support grants."""

from __future__ import annotations

import marshmallow as ma

from privacy.schemas import EmailField
from privacy.schemas import StrictSchema
from privacy.support.models import ACCESS


class OperatorSchema(ma.Schema):
    id = ma.fields.UUID(attribute="public_id")
    name = ma.fields.String()
    email = ma.fields.String()


class GrantSchema(ma.Schema):
    id = ma.fields.UUID(attribute="public_id")
    operator = ma.fields.Nested(OperatorSchema)
    access = ma.fields.String()
    reason = ma.fields.String()
    created_by = ma.fields.String()
    created_at = ma.fields.DateTime()
    expires_at = ma.fields.DateTime()
    revoked_at = ma.fields.DateTime(allow_none=True)
    uses = ma.fields.Integer(
        dump_default=None, metadata={"description": "audited entries and uses so far"}
    )


class GrantCreateSchema(StrictSchema):
    operator_email = EmailField(required=True)
    access = ma.fields.String(load_default="read", validate=ma.validate.OneOf(ACCESS))
    hours = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(min=1, max=72),
        metadata={"description": "how long the grant lasts, at most 72 hours"},
    )
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=500))
