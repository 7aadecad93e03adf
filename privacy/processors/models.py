"""The sub-processor register: sub-processors, transfer safeguards, DPAs, field history,
list versions (change notices), notices to accounts, objections, customers' webhooks."""

from __future__ import annotations

from datetime import date
from datetime import datetime

from flask import current_app
from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from privacy.database import AccountScopedMixin
from privacy.database import PublicIdMixin
from privacy.database import TimestampMixin
from privacy.database import UTCDateTime
from privacy.extensions import db

STATUSES = ("draft", "active", "retired")


class SubProcessor(PublicIdMixin, TimestampMixin, db.Model):
    """A company the platform engages to process customers' personal data."""

    __tablename__ = "subprocessors"
    __label__ = "Sub-processor"
    __table_args__ = (CheckConstraint("status IN ('draft', 'active', 'retired')", name="status"),)

    legal_name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    address: Mapped[str] = mapped_column(Text, nullable=False)
    contact: Mapped[str] = mapped_column(String(320), nullable=False)
    website: Mapped[str | None] = mapped_column(String(500), nullable=True)
    purpose: Mapped[str] = mapped_column(Text, nullable=False)
    data_categories: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    subject_categories: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    locations: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)  # ISO 3166
    services: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    review_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    # The US adequacy decision covers only organisations certified under the EU-US DPF.
    dpf_certified: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft")
    example: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    safeguards: Mapped[list[Safeguard]] = relationship(
        back_populates="subprocessor", cascade="all, delete-orphan", lazy="selectin"
    )
    dpas: Mapped[list[Dpa]] = relationship(
        back_populates="subprocessor",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="Dpa.signed_on",
    )


class Safeguard(PublicIdMixin, db.Model):
    """An Art. 46 safeguard for transfers to one country: SCCs (with their module) or BCRs."""

    __tablename__ = "subprocessor_safeguards"
    __table_args__ = (
        CheckConstraint("kind IN ('scc', 'bcr')", name="kind"),
        CheckConstraint("scc_module IS NULL OR scc_module BETWEEN 1 AND 4", name="scc_module"),
    )

    subprocessor_id: Mapped[int] = mapped_column(
        ForeignKey("subprocessors.id", ondelete="CASCADE"), nullable=False, index=True
    )
    country: Mapped[str] = mapped_column(String(2), nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    scc_module: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision: Mapped[str | None] = mapped_column(String(200), nullable=True)
    signed_on: Mapped[date] = mapped_column(Date, nullable=False)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    document_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    document_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    subprocessor: Mapped[SubProcessor] = relationship(back_populates="safeguards")


class Dpa(PublicIdMixin, db.Model):
    """The data processing agreement with a sub-processor (Art. 28(4)), one row a version."""

    __tablename__ = "subprocessor_dpas"
    __table_args__ = (UniqueConstraint("subprocessor_id", "version"),)

    subprocessor_id: Mapped[int] = mapped_column(
        ForeignKey("subprocessors.id", ondelete="CASCADE"), nullable=False, index=True
    )
    version: Mapped[str] = mapped_column(String(50), nullable=False)
    signed_on: Mapped[date] = mapped_column(Date, nullable=False)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    document_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    document_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    subprocessor: Mapped[SubProcessor] = relationship(back_populates="dpas")


class FieldChange(db.Model):
    """One changed field of a sub-processor, safeguard or DPA: the full history."""

    __tablename__ = "subprocessor_history"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subprocessor_id: Mapped[int] = mapped_column(
        ForeignKey("subprocessors.id", ondelete="CASCADE"), nullable=False, index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    field: Mapped[str] = mapped_column(String(64), nullable=False)
    old: Mapped[object | None] = mapped_column(JSON, nullable=True)
    new: Mapped[object | None] = mapped_column(JSON, nullable=True)


class ListVersion(db.Model):
    """A version of the sub-processor list: one change announced to every account.

    `effective_at` is the end of the notice period; `notice` is what was announced (name,
    address, contact, purpose, data categories, locations, safeguard), frozen.
    """

    __tablename__ = "subprocessor_list_versions"
    __table_args__ = (CheckConstraint("change IN ('added', 'replaced', 'removed')", name="change"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, nullable=False, unique=True)
    change: Mapped[str] = mapped_column(String(16), nullable=False)
    subprocessor_id: Mapped[int] = mapped_column(
        ForeignKey("subprocessors.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    replaces_id: Mapped[int | None] = mapped_column(
        ForeignKey("subprocessors.id", ondelete="RESTRICT"), nullable=True
    )
    announced_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    notice: Mapped[dict] = mapped_column(JSON, nullable=False)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)

    subprocessor: Mapped[SubProcessor] = relationship(foreign_keys=[subprocessor_id])
    replaces: Mapped[SubProcessor | None] = relationship(foreign_keys=[replaces_id])


class Notice(AccountScopedMixin, db.Model):
    """That (and when) one account was notified of one list version."""

    __tablename__ = "subprocessor_notices"
    __table_args__ = (UniqueConstraint("account_id", "list_version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_version_id: Mapped[int] = mapped_column(
        ForeignKey("subprocessor_list_versions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    notified_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    webhook_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    webhook_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    webhook_error: Mapped[str | None] = mapped_column(String(200), nullable=True)

    list_version: Mapped[ListVersion] = relationship(lazy="joined")


class Objection(PublicIdMixin, AccountScopedMixin, db.Model):
    """A customer admin objects to a change within its notice period (Art. 28(2))."""

    __tablename__ = "subprocessor_objections"
    __table_args__ = (
        UniqueConstraint("account_id", "list_version_id"),
        CheckConstraint("state IN ('open', 'resolved')", name="state"),
    )

    list_version_id: Mapped[int] = mapped_column(
        ForeignKey("subprocessor_list_versions.id", ondelete="CASCADE"), nullable=False
    )
    subprocessor_id: Mapped[int] = mapped_column(
        ForeignKey("subprocessors.id", ondelete="CASCADE"), nullable=False, index=True
    )
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)

    list_version: Mapped[ListVersion] = relationship(lazy="joined")
    subprocessor: Mapped[SubProcessor] = relationship(lazy="joined")


class Webhook(AccountScopedMixin, db.Model):
    """Where an account wants change notices POSTed, signed with its own secret (HMAC)."""

    __tablename__ = "subprocessor_webhooks"
    __table_args__ = (UniqueConstraint("account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    secret_ct: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    key_id: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    # The secret's additional data names the account: one webhook per account.
    account = relationship("Account")

    @staticmethod
    def _ring():
        return current_app.extensions["keyring"]

    def _aad(self) -> bytes:
        return f"{self.__tablename__}:{self.account.public_id}:secret".encode()

    def seal_secret(self, secret: str) -> None:
        """Encrypt the signing secret with the current data key, bound to the account."""
        ring = self._ring()
        self.secret_ct = ring.encrypt(secret, self._aad())
        self.key_id = ring.current_id

    def unseal_secret(self) -> str:
        """The signing secret; KeyRingError or InvalidTag when its key left the key ring."""
        return self._ring().decrypt(self.secret_ct, self.key_id, self._aad())

    def reencrypt(self) -> None:
        """Re-encrypt the secret under the current key (rotation)."""
        self.seal_secret(self.unseal_secret())
