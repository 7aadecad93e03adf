"""Schema building blocks shared by the domains: strict input, e-mail, name and date-time
fields, integer bounds, pages."""

from __future__ import annotations

from datetime import UTC

import marshmallow as ma
from apispec import BasePlugin

from privacy import validation

# The ranges of the database's integer columns (PostgreSQL's integer and bigint): an input
# integer is bounded by its column's, so a huge number is a 422 and not an overflow.
MAX_INTEGER = 2**31 - 1
MAX_BIG_INTEGER = 2**63 - 1


class StrictSchema(ma.Schema):
    """Input schemas reject unknown fields, so a typo is an error and not silently dropped."""

    class Meta:
        unknown = ma.RAISE


class OpenApiExtras(BasePlugin):
    """Lets a schema state in the API document a rule its validation adds across fields:
    `class Meta: openapi = {"minProperties": 1}`, so the document is as strict as the API."""

    def schema_helper(self, name, definition, **kwargs):
        schema = kwargs.get("schema")
        cls = schema if isinstance(schema, type) else type(schema)
        return dict(getattr(getattr(cls, "Meta", None), "openapi", {}))


# At least one character that is not a space, and no control character, line separator or
# surrogate anywhere (validation.clean_label): the form names and labels must take.
_NOT_CONTROL = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
_VISIBLE = r"[^\s\x00-\x1f\x7f-\x9f\u2028\u2029]"
LABEL_PATTERN = f"^{_NOT_CONTROL}*{_VISIBLE}{_NOT_CONTROL}*$"


def _documented(kwargs: dict, **rules) -> dict:
    """kwargs with `rules` added to the field's OpenAPI metadata (the caller's win)."""
    return {**kwargs, "metadata": {**rules, **kwargs.get("metadata", {})}}


class JsonBoolean(ma.fields.Boolean):
    """A JSON body's true or false, nothing else: not "yes", "0" or 1. (Query strings carry
    text, so their booleans stay ma.fields.Boolean.)"""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class EmailField(ma.fields.String):
    """An e-mail address, validated and normalized on load."""

    def __init__(self, **kwargs):
        super().__init__(**_documented(kwargs, format="email", maxLength=validation.MAX_EMAIL))

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            return validation.normalize_email(value)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


class NameField(ma.fields.String):
    """A person's name, trimmed and NFC-normalized on load."""

    def __init__(self, **kwargs):
        super().__init__(
            **_documented(kwargs, minLength=1, maxLength=validation.MAX_NAME, pattern=LABEL_PATTERN)
        )

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            return validation.clean_name(value)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


class DateTimeField(ma.fields.AwareDateTime):
    """An RFC 3339 date-time with its offset, loaded as UTC.

    Converting to UTC is where the edges of the range overflow (`9999-12-31T23:59:59-12:00`
    is in year 10000 in UTC): that is a field message here, not a failure in the database.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("format", "iso")
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ma.ValidationError(
                "Not a date-time between 0001-01-01 and 9999-12-31 in UTC."
            ) from None


class PageArgsSchema(StrictSchema):
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=200))


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """An output schema `{"items": [...], "next_cursor": ...}` for cursor pagination."""
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema)),
            "next_cursor": ma.fields.String(allow_none=True),
        },
        name=name,
    )
