"""Operators (platform staff) and support-access grants."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from privacy.database import AccountScopedMixin
from privacy.database import EncryptedContactMixin
from privacy.database import PublicIdMixin
from privacy.database import TimestampMixin
from privacy.database import UTCDateTime
from privacy.extensions import db

OPERATOR_ROLES = ("support", "dpo")
ACCESS = ("read", "write")
# Operators are found by e-mail at sign-in; their blind index has its own scope.
OPERATOR_INDEX_SCOPE = "operators"


class Operator(PublicIdMixin, EncryptedContactMixin, TimestampMixin, db.Model):
    """Platform staff: not a member of any customer account."""

    __tablename__ = "operators"
    __label__ = "Operator"
    __table_args__ = (CheckConstraint("role IN ('support', 'dpo')", name="role"),)

    role: Mapped[str] = mapped_column(String(16), nullable=False, default="support")
    email_index: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SupportGrant(PublicIdMixin, AccountScopedMixin, db.Model):
    """A customer admin lets one operator into the account, for a while, read-only by default."""

    __tablename__ = "support_grants"
    __label__ = "Support grant"
    __table_args__ = (CheckConstraint("access IN ('read', 'write')", name="access"),)

    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), nullable=False, index=True
    )
    access: Mapped[str] = mapped_column(String(8), nullable=False, default="read")
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    operator: Mapped[Operator] = relationship(lazy="joined")

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now
