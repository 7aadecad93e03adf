"""Input and output schemas of subjects and systems (declared fields only)."""

from __future__ import annotations

import marshmallow as ma

from privacy.inventory.models import SYSTEM_KINDS
from privacy.inventory.models import SYSTEM_REGIONS
from privacy.schemas import EmailField
from privacy.schemas import NameField
from privacy.schemas import PageArgsSchema
from privacy.schemas import StrictSchema
from privacy.schemas import page_schema
from privacy.validation import MAX_EXTERNAL_REF
from privacy.validation import MAX_SOURCE
from privacy.validation import MAX_SYSTEMS

_ref = ma.validate.Length(min=1, max=MAX_EXTERNAL_REF)
_source = ma.validate.Length(min=1, max=MAX_SOURCE)


class SubjectSchema(ma.Schema):
    id = ma.fields.UUID(attribute="public_id", dump_only=True)
    name = ma.fields.String()
    email = ma.fields.String()
    external_ref = ma.fields.String(allow_none=True)
    source = ma.fields.String(allow_none=True)
    systems = ma.fields.Method("_system_ids")
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()

    def _system_ids(self, subject) -> list[str]:
        return sorted(str(system.public_id) for system in subject.systems)


class SubjectExportSchema(SubjectSchema):
    """A subject as the export writes it: systems by name (ids are the account's own), so
    the file imports as it is into this account or another that names its systems alike."""

    systems = ma.fields.Method("_system_names")

    def _system_names(self, subject) -> list[str]:
        return sorted(system.name for system in subject.systems)


class SubjectCreateSchema(StrictSchema):
    name = NameField(required=True)
    email = EmailField(required=True)
    external_ref = ma.fields.String(load_default=None, allow_none=True, validate=_ref)
    source = ma.fields.String(load_default=None, allow_none=True, validate=_source)
    systems = ma.fields.List(
        ma.fields.UUID(), load_default=list, validate=ma.validate.Length(max=MAX_SYSTEMS)
    )


class SubjectUpdateSchema(StrictSchema):
    class Meta(StrictSchema.Meta):
        openapi = {"minProperties": 1}  # the API document states `_not_empty`

    name = NameField()
    email = EmailField()
    external_ref = ma.fields.String(allow_none=True, validate=_ref)
    source = ma.fields.String(allow_none=True, validate=_source)
    systems = ma.fields.List(ma.fields.UUID(), validate=ma.validate.Length(max=MAX_SYSTEMS))

    @ma.validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ma.ValidationError("Give at least one field to change.", "_schema")


class LookupSchema(StrictSchema):
    email = EmailField(required=True)


class SubjectListArgsSchema(PageArgsSchema):
    system = ma.fields.UUID(load_default=None)
    external_ref = ma.fields.String(load_default=None, validate=_ref)


class ExportArgsSchema(StrictSchema):
    format = ma.fields.String(load_default="jsonl", validate=ma.validate.OneOf(["jsonl", "csv"]))


class ImportResultSchema(ma.Schema):
    import_id = ma.fields.UUID()
    imported = ma.fields.Integer()


class SystemSchema(ma.Schema):
    id = ma.fields.UUID(attribute="public_id", dump_only=True)
    name = ma.fields.String()
    kind = ma.fields.String()
    region = ma.fields.String()
    description = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class SystemCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(SYSTEM_KINDS))
    region = ma.fields.String(required=True, validate=ma.validate.OneOf(SYSTEM_REGIONS))
    description = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(max=2000)
    )


class SystemUpdateSchema(StrictSchema):
    class Meta(StrictSchema.Meta):
        openapi = {"minProperties": 1}  # the API document states `_not_empty`

    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    kind = ma.fields.String(validate=ma.validate.OneOf(SYSTEM_KINDS))
    region = ma.fields.String(validate=ma.validate.OneOf(SYSTEM_REGIONS))
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2000))

    @ma.validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ma.ValidationError("Give at least one field to change.", "_schema")


SubjectPageSchema = page_schema(SubjectSchema, "SubjectPage")
SystemPageSchema = page_schema(SystemSchema, "SystemPage")
