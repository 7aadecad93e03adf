"""Sign-in links and server-side sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from privacy.database import UTCDateTime
from privacy.extensions import db

METHODS = ("email", "google")


class LoginLink(db.Model):
    """A single-use sign-in link for one member (of one account) or one operator.

    Only the SHA-256 of the link's secret is stored. Invitations are links with a longer life.
    """

    __tablename__ = "login_links"
    __table_args__ = (
        CheckConstraint("(member_id IS NULL) <> (operator_id IS NULL)", name="one_person"),
        CheckConstraint("purpose IN ('sign_in', 'invitation')", name="purpose"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False, default="sign_in")
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), nullable=True, index=True
    )
    operator_id: Mapped[int | None] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UserSession(db.Model):
    """A signed-in browser. The cookie carries a random secret; only its SHA-256 is stored.

    A member's session belongs to the member's account; an operator's session opens an
    account only through a support grant (account_id and grant_id set together).
    """

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint("method IN ('email', 'google')", name="method"),
        CheckConstraint(
            "(member_id IS NOT NULL AND operator_id IS NULL) OR member_id IS NULL",
            name="one_person",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    # SET NULL: a removed member's session stays on record and is refused (and audited).
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True, index=True
    )
    operator_id: Mapped[int | None] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), nullable=True, index=True
    )
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True, index=True
    )
    grant_id: Mapped[int | None] = mapped_column(
        ForeignKey("support_grants.id", ondelete="SET NULL"), nullable=True
    )
    method: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
