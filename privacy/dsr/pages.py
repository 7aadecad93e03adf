"""Pages of the account's data-subject requests (and the DPO's view across accounts).

Request UUIDs are in URLs (they name no one); instruction ids travel in form bodies.
"""

from __future__ import annotations

import uuid

from flask import Blueprint
from flask import g
from flask import redirect
from flask import request
from flask import url_for

from privacy.accounts.models import ROLES
from privacy.auth.permissions import DPO
from privacy.auth.permissions import PERMISSIONS
from privacy.auth.permissions import page
from privacy.database import utcnow
from privacy.dsr import deadlines
from privacy.dsr import erasure
from privacy.dsr import reminders
from privacy.dsr import services
from privacy.dsr.models import FINAL
from privacy.dsr.models import KINDS
from privacy.dsr.models import STATES
from privacy.dsr.models import DataSubjectRequest
from privacy.dsr.schemas import MAX_REASON
from privacy.errors import AppError
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.pages import error_text
from privacy.pages import render_page
from privacy.pagination import decode_cursor
from privacy.pagination import encode_cursor

bp = Blueprint("dsr_pages", __name__)

PAGE_SIZE = 50


def _messages(msgs) -> str:
    if isinstance(msgs, dict):  # e.g. {"query": {"cursor": [...]}}
        return "; ".join(f"{k}: {_messages(v)}" for k, v in msgs.items())
    return " ".join(msgs)


def _can_manage(principal) -> bool:
    """Whether the page shows the admins' forms: what requests:manage allows."""
    role, _scope, grant_access = PERMISSIONS["requests:manage"]
    if principal.member is not None:
        return ROLES.index(principal.member.role) >= ROLES.index(role)
    grant = principal.grant
    return (
        grant is not None
        and grant_access is not None
        and (grant_access == "read" or grant.access == "write")
    )


# -- the list ---------------------------------------------------------------------------


def _filter(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise ValidationFailed(errors={name: [f"One of {', '.join(allowed)}."]})
    return value


@bp.get("/requests")
@page("requests:read")
def requests():
    now = utcnow()
    due = services.due_soon(g.account, days=reminders.DUE_SOON_DAYS, now=now)
    context = {
        "due": due,
        "now": now,
        "states": STATES,
        "kinds": KINDS,
        "failed": reminders.failed_callbacks(g.account),
        "days": reminders.DUE_SOON_DAYS,
    }
    try:
        status, kind = _filter("status", STATES), _filter("kind", KINDS)
        rows = services.list_requests(
            g.account,
            status=status,
            kind=kind,
            after_id=decode_cursor(request.args.get("cursor")),
            limit=PAGE_SIZE + 1,
        )
    except AppError as exc:
        return render_page(
            "dsr/admin_list.html",
            exc.code,
            rows=[],
            next_cursor=None,
            error=error_text(exc),
            **context,
        )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return render_page(
        "dsr/admin_list.html",
        rows=rows,
        status_filter=status,
        kind_filter=kind,
        next_cursor=encode_cursor(rows[-1].id) if more and rows else None,
        **context,
    )


# -- one request ------------------------------------------------------------------------


def _detail_page(dsr: DataSubjectRequest, status: int = 200, **context):
    principal = g.principal
    manage = _can_manage(principal)
    # The requester's e-mail and message for the account's own admins only, not for
    # support staff.
    admin = principal.member is not None and principal.member.role == "admin"
    now = utcnow()
    return render_page(
        "dsr/admin_detail.html",
        status,
        dsr=dsr,
        email=dsr.unseal_email() if admin else None,
        message=dsr.unseal_message() if admin else None,
        deliveries=reminders.deliveries_of(dsr),
        manage=manage,
        now=now,
        overdue=reminders.is_overdue(dsr, now),
        open=dsr.status not in FINAL,
        extensible=deadlines.can_extend(
            received_at=min(dsr.submitted_at, dsr.received_at),
            due_at=dsr.due_at,
            extended_at=dsr.extended_at,
            now=now,
        )
        is None,
        exceptions=services.EXCEPTIONS,
        max_months=deadlines.MAX_EXTENSION_MONTHS,
        **context,
    )


@bp.get("/requests/<uuid:request_id>")
@page("requests:read")
def request_detail(request_id: uuid.UUID):
    return _detail_page(services.get(g.account, request_id))


def _decide(request_id: uuid.UUID, decide, notice: str):
    """Load the request (an HTML 404 for another account's), apply `decide`, commit and
    redirect; on an AppError re-render the detail with the error and its status."""
    dsr = services.get(g.account, request_id, for_update=True)
    try:
        decide(dsr)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return _detail_page(dsr, exc.code, error=error_text(exc))
    return redirect(url_for("dsr_pages.request_detail", request_id=request_id, done=notice), 303)


def _reason() -> str:
    reason = request.form.get("reason", "")
    if len(reason) > MAX_REASON:
        raise ValidationFailed(errors={"reason": [f"At most {MAX_REASON} characters."]})
    return reason


def _months() -> int:
    try:
        months = int(request.form.get("months", ""))
    except ValueError:
        raise ValidationFailed(errors={"months": ["Give 1 or 2 months."]}) from None
    if not 1 <= months <= deadlines.MAX_EXTENSION_MONTHS:
        raise ValidationFailed(errors={"months": ["An extension is 1 or 2 months."]})
    return months


@bp.post("/requests/<uuid:request_id>/extension")
@page("requests:manage")
def extend(request_id: uuid.UUID):
    def decide(dsr):
        services.extend(
            g.account,
            dsr,
            months=_months(),
            reason=_reason(),
            actor=g.actor,
        )

    return _decide(request_id, decide, "extended")


@bp.post("/requests/<uuid:request_id>/rejection")
@page("requests:manage")
def reject(request_id: uuid.UUID):
    def decide(dsr):
        services.reject(g.account, dsr, reason=_reason(), actor=g.actor)

    return _decide(request_id, decide, "rejected")


@bp.post("/requests/<uuid:request_id>/exception")
@page("requests:manage")
def record_exception(request_id: uuid.UUID):
    def decide(dsr):
        point = request.form.get("point", "")
        if point not in services.EXCEPTIONS:
            raise ValidationFailed(errors={"point": ["Choose a point of Art. 17(3), a to e."]})
        services.reject(
            g.account,
            dsr,
            reason=_reason(),
            exception=point,
            actor=g.actor,
        )

    return _decide(request_id, decide, "exception")


@bp.post("/requests/<uuid:request_id>/instructions/confirm")
@page("requests:manage")
def confirm_instruction(request_id: uuid.UUID):
    def decide(dsr):
        try:
            instruction_id = uuid.UUID(request.form.get("id", ""))
        except ValueError:
            raise ValidationFailed(errors={"id": ["Not a valid id."]}) from None
        erasure.confirm_instruction(g.account, dsr, instruction_id, actor=g.actor)

    return _decide(request_id, decide, "confirmed")


# -- the platform's DPO -----------------------------------------------------------------


@bp.get("/dpo/requests")
@page(DPO)
def dpo_requests():
    """Open requests due soon or overdue in every account: counts and ids, no one's name."""
    now = utcnow()
    return render_page(
        "dsr/dpo.html",
        accounts=reminders.due_across_accounts(now=now),
        now=now,
        days=reminders.DUE_SOON_DAYS,
    )
