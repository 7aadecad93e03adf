"""HTTPS enforcement and security headers on every response."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask
from flask import Response
from flask import has_request_context
from flask import redirect
from flask import request

# No 'unsafe-inline' and no 'unsafe-eval': a page that needs an inline <script> or <style>
# marks it with nonce="{{ csp_nonce() }}", and only that response allows the nonce.
# img-src data: is for the icons inside swagger-ui.css.
CSP_DIRECTIVES: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
NONCE_DIRECTIVES = ("script-src", "style-src")

SECURITY_HEADERS: dict[str, str] = {
    "X-Frame-Options": "DENY",
    # Sign-in links carry their token in the path: no page may pass its URL on.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=63072000; includeSubDomains"
# Health probes come from the load balancer over plain HTTP inside the network.
PLAIN_HTTP_ENDPOINTS = frozenset({"health.healthz", "health.readyz"})

_NONCE_KEY = "privacy.csp_nonce"


def init_app(app: Flask) -> None:
    """Redirect to HTTPS (with FORCE_HTTPS), add the security headers, offer csp_nonce()."""
    _enforce_https(app)
    directives = policy_directives(app.config)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        # setdefault: a view that sets its own (stricter) value keeps it, nothing is doubled.
        nonce = request.environ.get(_NONCE_KEY)
        policy = content_security_policy(directives, nonce)
        response.headers.setdefault("Content-Security-Policy", policy)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.context_processor(lambda: {"csp_nonce": csp_nonce})


def policy_directives(config) -> dict[str, str]:
    """CSP_DIRECTIVES for this app's configuration.

    With "Sign in with Google" (an OIDC client id) the sign-in form may post to our route
    that redirects to the issuer: browsers check form-action against that redirect too.
    """
    directives = dict(CSP_DIRECTIVES)
    if config.get("OIDC_CLIENT_ID") and config.get("OIDC_ISSUER"):
        issuer = urlsplit(config["OIDC_ISSUER"])
        if issuer.scheme == "https" and issuer.netloc:
            directives["form-action"] += f" https://{issuer.netloc}"
    return directives


def csp_nonce() -> str:
    """The nonce of this response's Content-Security-Policy, made on first use.

    Kept in the WSGI environ, not `g`: an app context can outlive one request (tests, CLI).
    Outside a request (mail, PDF) there is no policy to match and it returns "". A page
    streamed with stream_template must call it before the first chunk, or the header is
    already out without the nonce and the browser blocks the script.
    """
    if not has_request_context():
        return ""
    nonce = request.environ.get(_NONCE_KEY)
    if nonce is None:
        nonce = request.environ[_NONCE_KEY] = secrets.token_urlsafe(18)
    return nonce


def content_security_policy(
    directives: dict[str, str] = CSP_DIRECTIVES, nonce: str | None = None
) -> str:
    """The header value; with a nonce, script-src and style-src also allow that nonce."""
    directives = dict(directives)
    if nonce:
        for name in NONCE_DIRECTIVES:
            directives[name] += f" 'nonce-{nonce}'"
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def _enforce_https(app: Flask) -> None:
    if not app.config["FORCE_HTTPS"]:
        return

    @app.before_request
    def require_https():
        if not request.is_secure and request.endpoint not in PLAIN_HTTP_ENDPOINTS:
            return redirect(request.url.replace("http://", "https://", 1), code=308)
        return None

    @app.after_request
    def hsts(response: Response) -> Response:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response
