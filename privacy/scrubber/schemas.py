"""Request and response schemas of the scrubbing API."""

from __future__ import annotations

import marshmallow as ma

from privacy.schemas import StrictSchema
from privacy.scrubber.operators import MODES


class ScrubOptionsSchema(StrictSchema):
    """How to replace and what to return; the query string of the streaming endpoint."""

    mode = ma.fields.String(
        load_default="redact",
        validate=ma.validate.OneOf(MODES),
        metadata={"description": "redact, mask, pseudonym (keyed, stable) or token (reversible)"},
    )
    findings = ma.fields.Boolean(
        load_default=True, metadata={"description": "include the findings of each line"}
    )


class RelayOptionsSchema(StrictSchema):
    """The query string of the relay endpoint."""

    mode = ScrubOptionsSchema().fields["mode"]


class RelayResultSchema(StrictSchema):
    lines = ma.fields.Integer(metadata={"description": "lines scrubbed and relayed"})


class ScrubInputSchema(ScrubOptionsSchema):
    """Exactly one of `text` and `lines`."""

    text = ma.fields.String()
    lines = ma.fields.List(ma.fields.String(), metadata={"description": "up to 10,000 lines"})

    @ma.validates_schema
    def one_input(self, data, **kwargs):
        if ("text" in data) == ("lines" in data):
            raise ma.ValidationError("Send exactly one of text or lines.")


class FindingSchema(ma.Schema):
    """Offsets into the input line, end exclusive."""

    start = ma.fields.Integer()
    end = ma.fields.Integer()
    entity_type = ma.fields.String()
    score = ma.fields.Float()


class ScrubbedSchema(ma.Schema):
    text = ma.fields.String()
    findings = ma.fields.List(ma.fields.Nested(FindingSchema))


class ScrubResultSchema(ScrubbedSchema):
    """`text` and `findings` for a text; `lines` (in input order) for lines."""

    lines = ma.fields.List(ma.fields.Nested(ScrubbedSchema))


class ReverseInputSchema(StrictSchema):
    text = ma.fields.String(required=True)


class ReverseResultSchema(ma.Schema):
    text = ma.fields.String()
    reversed = ma.fields.Integer(metadata={"description": "tokens turned back into values"})


_ENTITY_NAME = ma.validate.Regexp(
    r"^[A-Z][A-Z0-9_]{1,39}$", error="Entity names look like EMPLOYEE_ID."
)


class ScrubSettingsSchema(StrictSchema):
    """An account's scrubber settings; every field optional on input, all present on output."""

    entities = ma.fields.List(
        ma.fields.String(validate=_ENTITY_NAME),
        load_default=list,
        validate=ma.validate.Length(max=50),
        metadata={
            "description": "opt-in entities on top of the defaults (UUID, URL, "
            "DATE_TIME, US_SSN, LOCATION, ...)"
        },
    )
    patterns = ma.fields.Dict(
        keys=ma.fields.String(validate=_ENTITY_NAME),
        values=ma.fields.List(
            ma.fields.String(validate=ma.validate.Length(min=1, max=500)),
            validate=ma.validate.Length(min=1, max=20),
        ),
        load_default=dict,
        validate=ma.validate.Length(max=20),
        metadata={"description": "custom entity -> regular expressions"},
    )
    deny = ma.fields.Dict(
        keys=ma.fields.String(validate=_ENTITY_NAME),
        values=ma.fields.List(
            ma.fields.String(validate=ma.validate.Length(min=1, max=200)),
            validate=ma.validate.Length(min=1, max=1000),
        ),
        load_default=dict,
        validate=ma.validate.Length(max=20),
        metadata={"description": "entity -> values always reported as that entity"},
    )
    allow = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=200)),
        load_default=list,
        validate=ma.validate.Length(max=1000),
        metadata={"description": "values never reported (e.g. a support address)"},
    )
    updated_at = ma.fields.DateTime(dump_only=True, allow_none=True)
