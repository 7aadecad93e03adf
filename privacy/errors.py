"""The AppError hierarchy and the one JSON error shape: {"code", "status", "message", "errors"?}."""

from __future__ import annotations

import logging
import traceback

from flask import Response
from flask import current_app
from flask import render_template
from flask import request
from werkzeug.exceptions import HTTPException

from privacy import logs

logger = logging.getLogger(__name__)


class AppError(HTTPException):
    """Base of the errors services raise; rendered in the one error shape.

    `errors` carries field messages (422) or other structured detail.
    """

    code = 400
    description = "The request cannot be processed."

    def __init__(
        self, message: str | None = None, *, errors: dict | None = None, headers: dict | None = None
    ):
        super().__init__(message or self.description)
        self.data = {"message": message or self.description}
        if errors:
            self.data["errors"] = errors
        if headers:
            self.data["headers"] = headers


class BadRequest(AppError):
    code = 400
    description = "The request is malformed."


class Unauthorized(AppError):
    code = 401
    description = "A valid API token is required."

    def __init__(self, message: str | None = None, **kwargs):
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="privacy"'})
        super().__init__(message, **kwargs)


class Forbidden(AppError):
    code = 403
    description = "This token may not do that."


class NotFound(AppError):
    code = 404
    description = "Not found."


class Conflict(AppError):
    code = 409
    description = "The request conflicts with the current state."


class PayloadTooLarge(AppError):
    code = 413
    description = "The request body is too large."


class UnsupportedMediaType(AppError):
    code = 415
    description = "The body is not in a type this endpoint takes."


class ValidationFailed(AppError):
    code = 422
    description = "The input is not valid."


class TooManyRequests(AppError):
    code = 429
    description = "Too many requests; retry later."


class ServiceUnavailable(AppError):
    code = 503
    description = "The service is not ready."


def _wants_html() -> bool:
    if request.path.startswith(("/api", "/opendsr", "/opengdpr", "/healthz", "/readyz")):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


# Our wording where a framework error (Werkzeug, webargs) would answer with its own default
# description, written for browsers ("The browser (or proxy) sent a request that ..."):
# the same code reads the same whoever raised it.
WORDING = {
    error.code: error.description
    for error in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
        TooManyRequests,
    )
}
WORDING[405] = "This method is not allowed here."


def error_payload(error: HTTPException) -> tuple[dict, dict]:
    data = getattr(error, "data", None) or {}
    message = data.get("message")
    if not message:
        own = isinstance(error, AppError) or error.description != type(error).description
        message = error.description if own else WORDING.get(error.code, error.description)
    payload = {
        "code": error.code,
        "status": error.name,
        "message": message,
    }
    errors = data.get("errors") or data.get("messages")
    if errors:
        payload["errors"] = errors
    # What the exception itself says in headers (a 405's Allow, a 429's Retry-After, a
    # 401's WWW-Authenticate), then ours; never its Content-Type: the body is ours.
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    return payload, headers


def report_server_error(error: HTTPException) -> None:
    """Roll back, and log an unexpected failure by type, frames and request id only:
    exception messages can carry input values."""
    # The app's Flask-SQLAlchemy (privacy.extensions.db), found through the app: the
    # extensions module builds on this one (the API's error handler), not the reverse.
    current_app.extensions["sqlalchemy"].session.rollback()
    original = getattr(error, "original_exception", None)
    if original is not None:
        frames = "".join(traceback.format_tb(original.__traceback__))
        logger.error(
            "unhandled %s request_id=%s\n%s",
            type(original).__name__,
            logs.request_id(),
            frames,
        )


def handle_http_exception(error: HTTPException):
    """Render every HTTP error, including unexpected 500s, in the one shape."""
    if error.code is None:
        return error
    if error.code >= 500:
        report_server_error(error)
    payload, headers = error_payload(error)
    if _wants_html():
        body = render_template("error.html", error=payload)
        return Response(body, status=error.code, headers=headers, mimetype="text/html")
    return payload, error.code, headers
