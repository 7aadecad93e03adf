"""Change notices to customers (Art. 28(2)): every list version is announced to the admins
of every account (e-mail and in-app notice), and becomes effective for an account when its
notice period has passed, unless that account objected."""

from __future__ import annotations

from flask import current_app
from flask import render_template
from sqlalchemy import select

from privacy import mail
from privacy.accounts.models import Account
from privacy.accounts.models import Member
from privacy.database import for_account
from privacy.database import utcnow
from privacy.extensions import db
from privacy.processors.models import ListVersion
from privacy.processors.models import Notice


def announce(version: ListVersion) -> int:
    """Record the notice for every account and mail its admins (after the commit)."""
    now = utcnow()
    accounts = list(db.session.scalars(select(Account).order_by(Account.id)))
    for account in accounts:
        db.session.add(Notice(account_id=account.id, list_version_id=version.id, notified_at=now))
        admins = db.session.scalars(for_account(Member, account).where(Member.role == "admin"))
        text = render_template(
            "mail/subprocessor_notice.txt",
            account=account,
            version=version,
            notice=version.notice,
            base_url=current_app.config["BASE_URL"],
        )
        name = version.notice["subprocessor"]["legal_name"]
        subject = f"Sub-processor change notice {version.number}: {name}"
        for admin in admins:
            mail.send_after_commit(admin.email, subject, text)
    db.session.flush()
    return len(accounts)


def notices_for(account: Account) -> list[Notice]:
    return list(
        db.session.scalars(
            for_account(Notice, account).order_by(Notice.notified_at.desc(), Notice.id.desc())
        )
    )
