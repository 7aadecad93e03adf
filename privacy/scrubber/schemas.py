"""Request and response schemas of the scrubbing API."""

from __future__ import annotations

import marshmallow as ma

from privacy.schemas import JsonBoolean
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


_UNSCRUBBED_LINES = {
    "description": "numbers (from 1) of the lines that could not be scrubbed within the time "
    "budget and were replaced by <UNSCRUBBED>; only when there are some"
}


class RelayResultSchema(StrictSchema):
    lines = ma.fields.Integer(metadata={"description": "lines scrubbed and relayed"})
    unscrubbed_lines = ma.fields.List(ma.fields.Integer(), metadata=_UNSCRUBBED_LINES)


class ScrubInputSchema(ScrubOptionsSchema):
    """Exactly one of `text` and `lines`."""

    class Meta(StrictSchema.Meta):
        # The API document states `one_input`.
        openapi = {"oneOf": [{"required": ["text"]}, {"required": ["lines"]}]}

    text = ma.fields.String()
    lines = ma.fields.List(ma.fields.String(), metadata={"description": "up to 10,000 lines"})
    # In a JSON body, true or false only (the stream's query string keeps "true"/"false").
    findings = JsonBoolean(
        load_default=True, metadata={"description": "include the findings of each line"}
    )

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
    unscrubbed = ma.fields.Boolean(
        metadata={
            "description": "true when the line could not be scrubbed within the time budget: "
            "its text is then <UNSCRUBBED>; only present when true"
        }
    )


class ScrubResultSchema(ScrubbedSchema):
    """`text` and `findings` for a text; `lines` (in input order) for lines."""

    lines = ma.fields.List(ma.fields.Nested(ScrubbedSchema))
    unscrubbed_lines = ma.fields.List(ma.fields.Integer(), metadata=_UNSCRUBBED_LINES)


class ReverseInputSchema(StrictSchema):
    text = ma.fields.String(required=True)


class ReverseResultSchema(ma.Schema):
    text = ma.fields.String()
    reversed = ma.fields.Integer(metadata={"description": "tokens turned back into values"})


_ENTITY_NAME = ma.validate.Regexp(
    r"^[A-Z][A-Z0-9_]{1,39}$", error="Entity names look like EMPLOYEE_ID."
)


def _entities(**kwargs) -> ma.fields.Field:
    return ma.fields.List(
        ma.fields.String(validate=_ENTITY_NAME),
        validate=ma.validate.Length(max=50),
        metadata={
            "description": "opt-in entities on top of the defaults (UUID, URL, "
            "DATE_TIME, US_SSN, LOCATION, ...)"
        },
        **kwargs,
    )


def _patterns(**kwargs) -> ma.fields.Field:
    return ma.fields.Dict(
        keys=ma.fields.String(validate=_ENTITY_NAME),
        values=ma.fields.List(
            ma.fields.String(validate=ma.validate.Length(min=1, max=500)),
            validate=ma.validate.Length(min=1, max=20),
        ),
        validate=ma.validate.Length(max=20),
        metadata={
            "description": "custom entity -> regular expressions in RE2 syntax (no lookaround "
            "or backreferences; matched case-insensitively, in time linear in the text)"
        },
        **kwargs,
    )


def _deny(**kwargs) -> ma.fields.Field:
    return ma.fields.Dict(
        keys=ma.fields.String(validate=_ENTITY_NAME),
        values=ma.fields.List(
            ma.fields.String(validate=ma.validate.Length(min=1, max=200)),
            validate=ma.validate.Length(min=1, max=1000),
        ),
        validate=ma.validate.Length(max=20),
        metadata={"description": "entity -> values always reported as that entity"},
        **kwargs,
    )


def _allow(**kwargs) -> ma.fields.Field:
    return ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=200)),
        validate=ma.validate.Length(max=1000),
        metadata={"description": "values never reported (e.g. a support address)"},
        **kwargs,
    )


class ScrubSettingsSchema(StrictSchema):
    """An account's scrubber settings. PUT replaces all of them, so it needs every field
    (send empty ones to clear); GET returns every field."""

    entities = _entities(required=True)
    patterns = _patterns(required=True)
    deny = _deny(required=True)
    allow = _allow(required=True)
    updated_at = ma.fields.DateTime(dump_only=True, allow_none=True)


class ScrubSettingsPatchSchema(StrictSchema):
    """The settings to change: each field given replaces that field; the others stay."""

    class Meta(StrictSchema.Meta):
        openapi = {"minProperties": 1}  # the API document states `_not_empty`

    entities = _entities()
    patterns = _patterns()
    deny = _deny()
    allow = _allow()

    @ma.validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ma.ValidationError("Give at least one field to change.", "_schema")
