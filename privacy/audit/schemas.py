"""Response and query schemas of the audit API."""

from __future__ import annotations

import marshmallow as ma

from privacy.schemas import DateTimeField
from privacy.schemas import PageArgsSchema


class AuditEventSchema(ma.Schema):
    seq = ma.fields.Integer()
    time = ma.fields.DateTime(attribute="created_at")
    actor = ma.fields.String()
    action = ma.fields.String()
    object_type = ma.fields.String(allow_none=True)
    object_id = ma.fields.String(allow_none=True)
    request_id = ma.fields.String(allow_none=True)
    data = ma.fields.Dict(allow_none=True)
    hash = ma.fields.String()


class AuditArgsSchema(PageArgsSchema):
    action = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))
    object_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))
    since = DateTimeField(load_default=None)
