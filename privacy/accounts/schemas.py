"""Schemas of the account, members and API tokens."""

from __future__ import annotations

import marshmallow as ma

from privacy.accounts.models import ROLES
from privacy.accounts.models import SCOPES
from privacy.schemas import DateTimeField
from privacy.schemas import EmailField
from privacy.schemas import NameField
from privacy.schemas import StrictSchema


class AccountSchema(ma.Schema):
    id = ma.fields.UUID(attribute="public_id")
    name = ma.fields.String()
    region = ma.fields.String()
    created_at = ma.fields.DateTime()


class MemberSchema(ma.Schema):
    id = ma.fields.UUID(attribute="public_id")
    name = ma.fields.String()
    email = ma.fields.String()
    role = ma.fields.String()
    created_at = ma.fields.DateTime()
    invited_at = ma.fields.DateTime(allow_none=True)
    joined_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "First sign-in; null while invited"}
    )


class MemberCreateSchema(StrictSchema):
    email = EmailField(required=True)
    name = NameField(load_default=None)
    role = ma.fields.String(load_default="member", validate=ma.validate.OneOf(ROLES))


class MemberUpdateSchema(StrictSchema):
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(ROLES))


class TokenSchema(ma.Schema):
    id = ma.fields.UUID(attribute="public_id")
    name = ma.fields.String()
    prefix = ma.fields.String(metadata={"description": "First characters, to recognise it"})
    role = ma.fields.String()
    scopes = ma.fields.List(ma.fields.String(), allow_none=True)
    created_at = ma.fields.DateTime()
    expires_at = ma.fields.DateTime(allow_none=True)
    last_used_at = ma.fields.DateTime(allow_none=True)
    revoked_at = ma.fields.DateTime(allow_none=True)


class TokenCreatedSchema(TokenSchema):
    token = ma.fields.String(
        attribute="secret", metadata={"description": "The secret, shown this once"}
    )


class TokenCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    role = ma.fields.String(load_default="member", validate=ma.validate.OneOf(ROLES))
    scopes = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(SCOPES)),
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(min=1),
        metadata={"description": "Omit for every area the role allows; a list narrows it."},
    )
    expires_at = DateTimeField(load_default=None, allow_none=True)
