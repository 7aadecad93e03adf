"""The API's flask-smorest classes: the Api whose errors share the one error shape, and the
Blueprint class every API routes module uses, whose JSON body parser refuses clearly."""

from __future__ import annotations

import json

import flask_smorest
from flask_smorest import Api
from webargs.core import missing
from webargs.flaskparser import FlaskParser
from webargs.flaskparser import is_json_request

from privacy import errors
from privacy import validation


class PrivacyApi(Api):
    """flask-smorest Api whose errors, ours and the framework's, share one shape, and whose
    OpenAPI document says every operation takes a bearer API token."""

    def init_app(self, app, *, spec_kwargs=None):
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.spec.components.security_scheme(
            "bearerAuth", {"type": "http", "scheme": "bearer", "description": "API token prv_..."}
        )
        self.spec.options["security"] = [{"bearerAuth": []}]

    def handle_http_exception(self, error):
        return errors.handle_http_exception(error)


class JsonBodyParser(FlaskParser):
    """webargs' parser, with clear answers to the two commonest mistakes with a JSON body,
    and a refusal of JSON that would only fail deeper in.

    A body sent without `Content-Type: application/json` (curl's -d sends a form type) is
    415 naming the type, not 422 "missing field" for fields that were sent; a body that is
    not JSON is 400 saying where it breaks; JSON nested too deeply, with a lone surrogate or
    a NUL, NaN or an integer of thousands of digits is 400 naming which (validation.load_json),
    and so is a query string with a NUL. None of them repeats the input.
    """

    def _raw_load_json(self, req):
        if not is_json_request(req):
            if req.get_data(cache=True):
                raise errors.UnsupportedMediaType(
                    f"Send the body as JSON with Content-Type: application/json "
                    f"(it came as {req.mimetype or 'no type'})."
                )
            return missing
        raw = req.get_data(cache=True)
        if not raw:
            return missing
        try:
            return validation.load_json(raw)
        except validation.UnsafeJson as exc:
            raise errors.BadRequest(
                f"The body is not acceptable JSON: {exc}.", errors={"json": [f"{exc}"]}
            ) from None

    def load_querystring(self, req, schema):
        values = req.args.items(multi=True)
        if any("\x00" in key or "\x00" in value for key, value in values):
            # No argument of ours holds one, and PostgreSQL refuses it in a query.
            raise errors.BadRequest(
                "The query string holds a NUL character (%00).",
                errors={"query": ["a NUL character (%00)"]},
            )
        return super().load_querystring(req, schema)

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        if isinstance(error, json.JSONDecodeError):
            where = f"line {error.lineno}, column {error.colno} (character {error.pos})"
            raise errors.BadRequest(
                f"The body is not valid JSON: {error.msg} at {where}.",
                errors={"json": [f"{error.msg} at {where}"]},
            )
        raise errors.BadRequest(
            "The body is not valid JSON: it is not UTF-8 text.",
            errors={"json": ["not UTF-8 text"]},
        )


class Blueprint(flask_smorest.Blueprint):
    """The API's blueprints: flask-smorest's, with JsonBodyParser for their arguments."""

    ARGUMENTS_PARSER = JsonBodyParser()
