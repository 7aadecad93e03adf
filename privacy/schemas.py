"""Schema building blocks shared by the domains: strict input, e-mail and name fields, pages."""

from __future__ import annotations

import marshmallow as ma

from privacy import validation


class StrictSchema(ma.Schema):
    """Input schemas reject unknown fields, so a typo is an error and not silently dropped."""

    class Meta:
        unknown = ma.RAISE


class EmailField(ma.fields.String):
    """An e-mail address, validated and normalized on load."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            return validation.normalize_email(value)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


class NameField(ma.fields.String):
    """A person's name, trimmed and NFC-normalized on load."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            return validation.clean_name(value)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


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
