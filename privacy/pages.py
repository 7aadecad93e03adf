"""What every server-rendered page shares: CSRF on form posts, the signed-in principal in
templates, page rendering with a status, and safe redirects after sign-in."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask
from flask import has_request_context
from flask import render_template
from flask import request

from privacy.auth import sessions
from privacy.extensions import csrf

# Paths whose requests authenticate with bearer tokens or serve machines, never cookies.
NON_PAGE_PREFIXES = (
    "/api/",
    "/opendsr/",
    "/opengdpr_requests",
    "/discovery",
    "/healthz",
    "/readyz",
    "/static/",
)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    # The token lives as long as the signed cookie; sessions end on their own clock.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)

    @app.before_request
    def protect_forms():
        if not app.config.get("WTF_CSRF_ENABLED", True):
            return
        if request.method in UNSAFE_METHODS and not request.path.startswith(NON_PAGE_PREFIXES):
            csrf.protect()

    @app.context_processor
    def principal():
        return {"principal": sessions.current() if _is_page() else None}


def _is_page() -> bool:
    # Templates also render outside requests (mail, PDF): no principal there.
    return has_request_context() and not request.path.startswith(NON_PAGE_PREFIXES)


def error_text(exc) -> str:
    """An AppError as one line for a page: the message, then each field's messages."""
    errors = exc.data.get("errors") or {}
    details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
    return f"{exc.data['message']} {details}".strip()


def render_page(template: str, status: int = 200, **context):
    return render_template(template, **context), status


def safe_next(target: str | None, default: str) -> str:
    """A local path to continue to after sign-in; anything else (other hosts) is `default`."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target
