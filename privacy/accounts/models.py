"""Account (tenant), Member and ApiToken tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON
from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from privacy.database import AccountScopedMixin
from privacy.database import EncryptedContactMixin
from privacy.database import PublicIdMixin
from privacy.database import TimestampMixin
from privacy.database import UTCDateTime
from privacy.extensions import db

REGIONS = ("eu", "us")
ROLES = ("member", "admin")  # ordered: a later role includes the earlier ones
SCOPES = ("inventory", "tokens", "members", "grants", "audit", "requests", "scrub", "subprocessors")

# Members are found by e-mail across accounts (sign-in), so their blind index has one scope.
MEMBER_INDEX_SCOPE = "members"


class Account(PublicIdMixin, TimestampMixin, db.Model):
    __tablename__ = "accounts"
    __label__ = "Account"
    __table_args__ = (CheckConstraint("region IN ('eu', 'us')", name="region"),)

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    region: Mapped[str] = mapped_column(String(2), nullable=False, default="eu")


class Member(PublicIdMixin, AccountScopedMixin, EncryptedContactMixin, TimestampMixin, db.Model):
    __tablename__ = "members"
    __label__ = "Member"
    __table_args__ = (
        UniqueConstraint("account_id", "email_index"),
        CheckConstraint("role IN ('admin', 'member')", name="role"),
    )

    role: Mapped[str] = mapped_column(String(16), nullable=False, default="member")
    # Set when an admin invites by e-mail; the invitation is open until the first sign-in
    # (joined_at) or until it expires. Members added otherwise (the CLI) are not invitations.
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiToken(PublicIdMixin, AccountScopedMixin, db.Model):
    __tablename__ = "api_tokens"
    __label__ = "API token"
    __table_args__ = (CheckConstraint("role IN ('admin', 'member')", name="role"),)

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    # None: every API area the role allows; a list narrows the token to those areas.
    scopes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
