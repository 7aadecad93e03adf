"""The customer's side of the register: the account's sub-processor page (effective list,
pending changes, objections, webhook) and the public Atom feed of changes.

List version numbers travel in form bodies, never in URLs.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from datetime import datetime
from xml.etree import ElementTree as ET  # noqa: S405 - we build XML, never parse it here

from flask import Blueprint
from flask import Response
from flask import g
from flask import redirect
from flask import request
from flask import url_for
from markupsafe import Markup
from sqlalchemy import select

from privacy import links
from privacy.auth.permissions import page
from privacy.auth.permissions import public
from privacy.errors import AppError
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.pages import error_text
from privacy.pages import render_page
from privacy.processors import notices
from privacy.processors import webhooks
from privacy.processors.models import ListVersion
from privacy.processors.schemas import MAX_REASON
from privacy.schemas import MAX_INTEGER

bp = Blueprint("processor_account_pages", __name__)

ATOM = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
FEED_TITLE = "Sub-processor changes"
AUTHOR = "Privacy service"


def _is_admin() -> bool:
    """Whether the page shows the admins' forms: what subprocessors:object allows (members
    only: support staff may never object or touch the webhook, grant or not)."""
    member = g.principal.member
    return member is not None and member.role == "admin"


def _page(status: int = 200, **context):
    account = g.account
    admin = _is_admin()
    return render_page(
        "processors/account.html",
        status,
        view=notices.account_view(account),
        announcements=notices.notices_for(account),
        unread=notices.unread_count(account),
        webhook=webhooks.get(account) if admin else None,
        admin=admin,
        max_reason=MAX_REASON,
        **context,
    )


def _form_number(name: str = "list_version") -> int:
    try:
        number = int(request.form.get(name, ""))
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_INTEGER:  # the column's range: beyond it the query overflows
        raise ValidationFailed(errors={name: ["A list version number."]})
    return number


@bp.get("/account/subprocessors")
@page("subprocessors:read")
def account():
    messages = {
        "objected": "Your objection is recorded; the platform's DPO has been told.",
        "read": "Marked as read.",
        "saved": "The webhook URL is saved.",
        "deleted": "The webhook is removed.",
    }
    done = next((text for key, text in messages.items() if request.args.get(key)), None)
    return _page(notice=done)


@bp.post("/account/subprocessors/objections")
@page("subprocessors:object")
def object_to():
    try:
        version = notices.version_by_number(_form_number())
        notices.object_to(g.account, version, reason=request.form.get("reason", ""), actor=g.actor)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _page(exc.code, error=error_text(exc))
    return redirect(url_for("processor_account_pages.account", objected=1), code=303)


@bp.post("/account/subprocessors/notices/read")
@page("subprocessors:object")
def mark_read():
    """Mark one in-app notice (`list_version`), or all of them, as read."""
    try:
        number = _form_number() if request.form.get("list_version") else None
        notices.mark_read(g.account, number=number)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _page(exc.code, error=error_text(exc))
    return redirect(url_for("processor_account_pages.account", read=1), code=303)


@bp.post("/account/subprocessors/webhook")
@page("subprocessors:object")
def set_webhook():
    try:
        _webhook, secret = webhooks.configure(
            g.account, url=request.form.get("url", ""), actor=g.actor
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _page(exc.code, error=error_text(exc))
    if secret is None:
        return redirect(url_for("processor_account_pages.account", saved=1), code=303)
    # Shown on this answer only; the page after a reload no longer has it.
    return _page(201, secret=secret)


@bp.post("/account/subprocessors/webhook/rotate")
@page("subprocessors:object")
def rotate_webhook():
    try:
        _webhook, secret = webhooks.rotate(g.account, actor=g.actor)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _page(exc.code, error=error_text(exc))
    return _page(secret=secret)


@bp.post("/account/subprocessors/webhook/delete")
@page("subprocessors:object")
def delete_webhook():
    try:
        webhooks.delete(g.account, actor=g.actor)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _page(exc.code, error=error_text(exc))
    return redirect(url_for("processor_account_pages.account", deleted=1), code=303)


# -- the Atom feed -----------------------------------------------------------------------


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _urn(name: str) -> str:
    """A stable Atom id: a name-based UUID of a URL of ours."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _title(version: ListVersion) -> str:
    notice = version.notice
    name = notice["subprocessor"]["legal_name"]
    if version.change == "replaced" and notice.get("replaces"):
        return f"List version {version.number}: {name} replaces {notice['replaces']['legal_name']}"
    return f"List version {version.number}: {name} {version.change}"


def _summary(version: ListVersion) -> str:
    sp = version.notice["subprocessor"]
    if version.change == "removed":
        return f"{sp['legal_name']} no longer processes customers' personal data."
    return (
        f"{sp['legal_name']} ({sp['purpose']}); takes effect for existing customers on "
        f"{version.effective_at:%Y-%m-%d}, who may object until then."
    )


def _content(version: ListVersion) -> str:
    """The notice as an HTML fragment (every value escaped)."""
    notice = version.notice
    sp = notice["subprocessor"]
    rows = [
        ("Change", notice["change"]),
        ("Replaces", (notice.get("replaces") or {}).get("legal_name")),
        ("Name", sp["legal_name"]),
        ("Address", sp["address"]),
        ("Contact", sp["contact"]),
        ("Website", sp.get("website")),
        ("Purpose", sp["purpose"]),
        ("Categories of data", ", ".join(sp["data_categories"]) or "—"),
        ("Categories of data subjects", ", ".join(sp.get("subject_categories") or []) or "—"),
        ("Services", ", ".join(sp.get("services") or []) or None),
        ("Announced", f"{version.announced_at:%Y-%m-%d %H:%M} UTC"),
        ("Takes effect", f"{version.effective_at:%Y-%m-%d %H:%M} UTC"),
    ]
    html = Markup("<dl>")
    for label, value in rows:
        if value:
            html += Markup("<dt>{}</dt><dd>{}</dd>").format(label, value)
    html += Markup("</dl><p>Locations and transfer safeguards:</p><ul>")
    for location in sp["locations"]:
        html += Markup("<li>{} ({}): {}</li>").format(
            location["name"], location["country"], location["safeguard"]
        )
    html += Markup("</ul>")
    return str(html)


def feed_xml(versions: list[ListVersion], base_url: str) -> bytes:
    """Atom 1.0 (RFC 4287): the list versions given, in that order."""
    feed_url = f"{base_url}/subprocessors/feed"
    page_url = f"{base_url}/subprocessors"
    # Unqualified names under a default namespace declared on the root: plain Atom markup.
    root = ET.Element("feed", xmlns=ATOM)
    _sub(root, "id", _urn(feed_url))
    _sub(root, "title", FEED_TITLE)
    _sub(root, "subtitle", "Every change to the platform's list of sub-processors (Art. 28 GDPR).")
    updated = max((v.announced_at for v in versions), default=None)
    _sub(root, "updated", _rfc3339(updated or datetime.now(UTC)))
    _sub(root, "link", rel="self", type=ATOM_TYPE, href=feed_url)
    _sub(root, "link", rel="alternate", type="text/html", href=page_url)
    author = _sub(root, "author")
    _sub(author, "name", AUTHOR)
    _sub(author, "uri", base_url + "/")
    for version in versions:
        entry = _sub(root, "entry")
        _sub(entry, "id", _urn(f"{base_url}/subprocessors/versions/{version.number}"))
        _sub(entry, "title", _title(version))
        _sub(entry, "published", _rfc3339(version.announced_at))
        _sub(entry, "updated", _rfc3339(version.announced_at))
        _sub(entry, "link", rel="alternate", type="text/html", href=page_url)
        _sub(entry, "category", term=version.change)
        _sub(entry, "summary", _summary(version), type="text")
        # type="html": the fragment travels as escaped text (ElementTree escapes it).
        _sub(entry, "content", _content(version), type="html")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


@bp.get("/subprocessors/feed")
@public
def feed():
    """The Atom feed of list versions, newest first, each with its notice."""
    versions = list(db.session.scalars(select(ListVersion).order_by(ListVersion.number.desc())))
    base_url = links.base_url()
    response = Response(feed_xml(versions, base_url), mimetype=ATOM_TYPE)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
