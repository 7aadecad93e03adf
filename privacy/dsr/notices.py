"""E-mails to people who asked through the web form (OpenDSR requests are told by callback)."""

from __future__ import annotations

from datetime import timedelta

from flask import render_template

from privacy import mail
from privacy.accounts.models import Account
from privacy.database import utcnow
from privacy.dsr.models import DataSubjectRequest


def _send(request: DataSubjectRequest, subject: str, template: str, **context) -> None:
    # Controllers hear about their requests by callback and tell their users themselves;
    # only people who asked through the form are written to.
    if request.source != "form":
        return
    to = request.unseal_email()
    if to is None:
        return
    text = render_template(f"mail/dsr_{template}.txt", request=request, **context)
    mail.send_after_commit(to, subject, text)


def extended(account: Account, request: DataSubjectRequest) -> None:
    _send(request, f"Your request to {account.name}: more time needed", "extended", account=account)


def rejected(
    account: Account, request: DataSubjectRequest, *, exception: str | None, complaint: str
) -> None:
    """The refusal: its reason, `exception` (the Art. 17(3) point invoked, in words, or
    None) and `complaint` (the right to complain and to a remedy)."""
    _send(
        request,
        f"Your request to {account.name}",
        "rejected",
        account=account,
        exception=exception,
        complaint=complaint,
    )


def completed(account: Account, request: DataSubjectRequest, results_url: str | None) -> None:
    purge = (request.completed_at or utcnow()) + timedelta(days=90)
    _send(
        request,
        f"Your request to {account.name} is complete",
        "completed",
        account=account,
        results_url=results_url,
        purge_by=purge,
    )
