"""Sign in with Google: OpenID Connect authorization code flow with state, nonce and PKCE."""

from __future__ import annotations

import logging

from flask import Blueprint
from flask import Flask
from flask import abort
from flask import current_app
from flask import request
from flask import session as cookie

from privacy import links
from privacy.auth.pages import complete_sign_in
from privacy.auth.permissions import public
from privacy.database import writes
from privacy.pages import render_page
from privacy.pages import safe_next
from privacy.validation import normalize_email

logger = logging.getLogger(__name__)

bp = Blueprint("google", __name__)

CALLBACK_PATH = "/auth/google/callback"
NEXT_KEY = "google_next"
# Error codes of RFC 6749 4.1.2.1 and OIDC Core 3.1.2.6; anything else is logged as "other"
# (the parameter is whatever the URL says, and a URL can carry an e-mail).
PROVIDER_ERRORS = frozenset(
    {
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
    }
)

BROKEN = (
    "Google sign-in did not complete: the answer did not match the sign-in this browser "
    "started. Start again from the sign-in page."
)
DENIED = (
    "Google sign-in was cancelled or refused. Start again from the sign-in page, or ask for "
    "a sign-in link by e-mail."
)
UNREACHABLE = (
    "Google cannot be reached right now. Try again in a few minutes, or ask for a sign-in "
    "link by e-mail."
)
UNVERIFIED = (
    "Google has not verified this e-mail address, so it cannot be used to sign in here. "
    "Verify it with Google first, or ask for a sign-in link by e-mail."
)


def init_app(app: Flask) -> None:
    """Register the configured issuer's client when an OIDC client id is set; otherwise
    Authlib is not even imported (the views answer 404)."""
    if app.config.get("OIDC_CLIENT_ID"):
        _provider().init_app(app)


def _provider():
    """The OpenID Connect client module (privacy.auth.oidc), imported on first use: the
    light start (Authlib and requests) for every instance without Google sign-in."""
    from privacy.auth import oidc

    return oidc


def redirect_uri() -> str:
    """The callback registered at the provider: from BASE_URL, never from the request's Host."""
    return links.external(CALLBACK_PATH)


@bp.post("/auth/google")
@public
def start():
    """Redirect to the provider; state, nonce and the PKCE verifier wait in the session."""
    if not current_app.config.get("OIDC_CLIENT_ID"):
        abort(404)
    oidc = _provider()
    try:
        google = oidc.client()
        oidc.discover(google)
        oidc.drop_pending_flows(google)
        cookie[NEXT_KEY] = safe_next(request.form.get("next"), "")
        response = oidc.authorize_redirect(google, redirect_uri())
    except (*oidc.FLOW_ERRORS, oidc.ProviderMisconfigured) as exc:
        return _refused(exc, "start")
    response.status_code = 303  # the browser follows with a GET
    return response


@bp.get(CALLBACK_PATH)
@writes
@public
def callback():
    """Exchange the code, validate the ID token, and sign in a verified member's address."""
    if not current_app.config.get("OIDC_CLIENT_ID"):
        abort(404)
    oidc = _provider()
    next_url = cookie.pop(NEXT_KEY, None)
    error = request.args.get("error")
    if error:
        reason = error if error in PROVIDER_ERRORS else "other"
        logger.info("google sign-in: the provider answered error=%s", reason)
        oidc.drop_pending_flows(oidc.client())
        return render_page("auth/link_refused.html", 400, message=DENIED)
    try:
        google = oidc.client()
        oidc.discover(google)
        token = oidc.exchange(google)
    except (*oidc.FLOW_ERRORS, oidc.ProviderMisconfigured) as exc:
        return _refused(exc, "callback")
    # Authlib validates an ID token only when the token response has one: no ID token, no
    # verified identity.
    claims = token.get("userinfo")
    if not claims:
        logger.warning("google sign-in refused: no ID token in the token response")
        return render_page("auth/link_refused.html", 400, message=BROKEN)
    if claims.get("email_verified") is not True:
        logger.info("google sign-in refused: e-mail not verified by the provider")
        return render_page("auth/not_allowed.html", 403, message=UNVERIFIED)
    try:
        email = normalize_email(claims.get("email") or "")
    except (TypeError, ValueError):
        logger.warning("google sign-in refused: no usable e-mail in the ID token")
        return render_page("auth/link_refused.html", 400, message=BROKEN)
    return complete_sign_in(email, method="google", next_url=next_url)


def _refused(exc: Exception, step: str):
    """The page for a failed flow, logged by error code or class only (oidc.failure)."""
    kind, reason = _provider().failure(exc, PROVIDER_ERRORS)
    if kind == "unreachable":
        logger.error("google sign-in %s: provider unreachable (%s)", step, reason)
        return render_page("auth/link_refused.html", 503, message=UNREACHABLE)
    if kind == "provider":
        logger.error("google sign-in %s: provider failed (%s)", step, reason)
        return render_page("auth/link_refused.html", 502, message=UNREACHABLE)
    if kind == "misconfigured":
        logger.error("google sign-in %s: %s", step, reason)
        return render_page("auth/link_refused.html", 400, message=BROKEN)
    logger.warning("google sign-in %s refused: %s", step, reason)
    return render_page("auth/link_refused.html", 400, message=BROKEN)
