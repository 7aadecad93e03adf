"""Subject, System and Holding (which system holds which subject) tables."""

from __future__ import annotations

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from privacy.database import AccountScopedMixin
from privacy.database import EncryptedContactMixin
from privacy.database import PublicIdMixin
from privacy.database import TimestampMixin
from privacy.extensions import db

SYSTEM_KINDS = ("database", "email_provider", "crm", "analytics", "support", "storage", "other")
SYSTEM_REGIONS = ("eu", "us", "other")


class Subject(PublicIdMixin, AccountScopedMixin, EncryptedContactMixin, TimestampMixin, db.Model):
    """A data subject of one account: a user of the customer, whose name and e-mail we hold."""

    __tablename__ = "subjects"
    __label__ = "Subject"
    __table_args__ = (
        UniqueConstraint("account_id", "email_index"),
        Index("ix_subjects_account_id_external_ref", "account_id", "external_ref"),
        Index("ix_subjects_account_id_email_hash_index", "account_id", "email_hash_index"),
    )

    external_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Keyed index of the e-mail's SHA-256, for requests that name the subject by that hash
    # (OpenDSR `sha256` identities) and for the erasure ledger. Never the bare hash.
    email_hash_index: Mapped[str | None] = mapped_column(String(64), nullable=True)


class System(PublicIdMixin, AccountScopedMixin, TimestampMixin, db.Model):
    """A data store where an account's personal data lives."""

    __tablename__ = "systems"
    __label__ = "System"
    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        CheckConstraint(
            "kind IN ('database', 'email_provider', 'crm', 'analytics', 'support', 'storage', "
            "'other')",
            name="kind",
        ),
        CheckConstraint("region IN ('eu', 'us', 'other')", name="region"),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    region: Mapped[str] = mapped_column(String(8), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)


class Holding(AccountScopedMixin, db.Model):
    """System `system_id` holds a copy of subject `subject_id`'s data."""

    __tablename__ = "holdings"

    subject_id: Mapped[int] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True
    )
    system_id: Mapped[int] = mapped_column(
        ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True, index=True
    )


# Read-only view of the holdings for output; Holding rows are written explicitly so that
# each carries its account_id.
Subject.systems = relationship(
    System, secondary="holdings", viewonly=True, lazy="selectin", order_by=System.id
)
