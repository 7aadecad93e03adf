"""Sign-in pages: ask for a link, use it, choose an account, sign out (here or everywhere)."""

from __future__ import annotations

import time

from flask import Blueprint
from flask import current_app
from flask import redirect
from flask import request
from flask import session as cookie
from flask import url_for

from privacy import mail
from privacy.accounts.models import Account
from privacy.accounts.models import Member
from privacy.auth import sessions
from privacy.auth import signin
from privacy.auth.permissions import SIGNED_IN
from privacy.auth.permissions import page
from privacy.auth.permissions import public
from privacy.extensions import db
from privacy.extensions import limiter
from privacy.pages import render_page
from privacy.pages import safe_next
from privacy.support.models import Operator
from privacy.validation import normalize_email

bp = Blueprint("auth", __name__)

CHOICE_SECONDS = 300  # how long a verified identity may take to pick an account


def _signin_limit() -> str:
    return current_app.config["SIGNIN_RATE_LIMIT"]


def _client_limit() -> str:
    """Ten times the per-address limit per client address (offices share one address)."""
    count, _, period = _signin_limit().partition(" ")
    return f"{int(count) * 10} {period}"


def _email_key() -> str:
    # Keyed: the limiter's storage sees neither the address nor a hash anyone could
    # recompute from a list of addresses.
    return "signin:" + mail.recipient_key(request.form.get("email") or "")


def _only_posts() -> bool:
    return request.method != "POST"


def home_for(principal) -> str:
    if principal.member is not None:
        return url_for("account_pages.members")
    return url_for("support_pages.console")


@bp.get("/")
@public
def index():
    principal = sessions.current()
    if principal is None:
        return redirect(url_for("auth.login"))
    return redirect(home_for(principal))


@bp.route("/auth/login", methods=["GET", "POST"])
@public
@limiter.limit(_signin_limit, key_func=_email_key, exempt_when=_only_posts)
@limiter.limit(_client_limit, exempt_when=_only_posts)
def login():
    """The sign-in form; the answer, and the work done before it, are the same whether or
    not the address is known: the worker looks it up (signin.request_links)."""
    minutes = current_app.config["SIGNIN_LINK_MINUTES"]
    google = bool(current_app.config.get("OIDC_CLIENT_ID"))
    next_url = request.values.get("next") or ""
    if request.method == "GET":
        return render_page("auth/login.html", minutes=minutes, google=google, next=next_url)
    raw = request.form.get("email") or ""
    try:
        email = normalize_email(raw)
    except ValueError as exc:
        return render_page(
            "auth/login.html",
            422,
            minutes=minutes,
            google=google,
            next=next_url,
            email=raw[:320],
            field_error=str(exc),
        )
    signin.request_links(email)
    db.session.commit()  # the worker's job is queued once its row exists
    return redirect(url_for("auth.check_email"), code=303)


@bp.get("/auth/check-email")
@public
def check_email():
    return render_page("auth/check_email.html", minutes=current_app.config["SIGNIN_LINK_MINUTES"])


@bp.get("/auth/link/<token>")
@public
def show_link(token: str):
    """A page with a button: mail scanners that open links do not use them up."""
    link = signin.peek(token)
    if link is None:
        message = "This link has expired or has been used. Ask for a new one."
        return render_page("auth/link_refused.html", 400, message=message)
    if link.member_id is not None:
        member = db.session.get(Member, link.member_id)
        label = db.session.get(Account, member.account_id).name
    else:
        label = "the platform support console"
    return render_page("auth/link.html", token=token, label=label)


@bp.post("/auth/link")
@public
def use_link():
    try:
        link = signin.consume(request.form.get("token") or "")
    except signin.LinkRefused as exc:
        db.session.commit()  # a refused link stays used
        return render_page("auth/link_refused.html", 400, message=str(exc))
    if link.member_id is not None:
        sessions.start(member=db.session.get(Member, link.member_id), method="email")
    else:
        sessions.start(operator=db.session.get(Operator, link.operator_id), method="email")
    db.session.commit()
    principal = sessions.current()
    return redirect(home_for(principal), code=303)


def complete_sign_in(email: str, *, method: str, next_url: str | None = None):
    """Finish a sign-in whose e-mail a provider verified: one place signs in at once,
    several ask which, none gets a clear page (403). It writes: a GET view calling it is
    marked `@writes`."""
    found = signin.destinations(normalize_email(email))
    if not found:
        message = (
            "This address is not a member of any account here, and has no open invitation. "
            "Ask an admin of your account to invite you."
        )
        return render_page("auth/not_allowed.html", 403, message=message)
    if len(found) == 1:
        return _start(found[0], method, next_url)
    cookie["choices"] = {
        "at": int(time.time()),
        "method": method,
        "next": next_url or "",
        "people": [
            ["member", d.member.id] if d.member else ["operator", d.operator.id] for d in found
        ],
    }
    return render_page("auth/choose.html", destinations=found)


def _start(destination, method: str, next_url: str | None):
    # Runs in a POST (choose) or in the provider's callback, a GET marked `@writes`.
    if destination.member is not None:
        sessions.start(member=destination.member, method=method)
    else:
        sessions.start(operator=destination.operator, method=method)
    db.session.commit()
    principal = sessions.current()
    return redirect(safe_next(next_url, home_for(principal)), code=303)


@bp.post("/auth/choose")
@public
def choose():
    pending = cookie.pop("choices", None)
    try:
        index = int(request.form.get("choice", ""))
        kind, person_id = pending["people"][index]
        fresh = time.time() - pending["at"] <= CHOICE_SECONDS
    except (TypeError, ValueError, KeyError, IndexError):
        fresh = False
    if not fresh:
        message = "That choice has expired. Sign in again."
        return render_page("auth/link_refused.html", 400, message=message)
    model = Member if kind == "member" else Operator
    person = db.session.get(model, person_id)
    if person is None:
        return render_page("auth/link_refused.html", 400, message="Sign in again.")
    destination = signin.Destination(
        "",
        member=person if kind == "member" else None,
        operator=person if kind != "member" else None,
    )
    return _start(destination, pending["method"], pending["next"])


@bp.post("/auth/logout")
@page(SIGNED_IN)
def logout():
    sessions.end_current("signed_out")
    return redirect(url_for("auth.login"), code=303)


@bp.post("/auth/logout-everywhere")
@page(SIGNED_IN)
def logout_everywhere():
    """End every session of the signed-in member (or operator), on every device."""
    principal = sessions.current()
    if principal.member is not None:
        sessions.end_member_sessions(
            principal.member, "signed_out_everywhere", actor=principal.actor
        )
    else:
        sessions.end_operator_sessions(
            principal.operator, "signed_out_everywhere", actor=principal.actor
        )
    db.session.commit()
    cookie.clear()
    return redirect(url_for("auth.login"), code=303)
