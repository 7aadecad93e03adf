"""Subject, System and Holding (which system holds which subject) tables, and the staging
tables of bulk imports."""

from __future__ import annotations

import uuid
from datetime import datetime

from flask import current_app
from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import Uuid
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from privacy.accounts.models import Account
from privacy.database import AccountScopedMixin
from privacy.database import EncryptedContactMixin
from privacy.database import PublicIdMixin
from privacy.database import TimestampMixin
from privacy.database import UTCDateTime
from privacy.database import decrypt_field
from privacy.database import encrypt_field
from privacy.database import ref_index
from privacy.extensions import db

SYSTEM_KINDS = ("database", "email_provider", "crm", "analytics", "support", "storage", "other")
SYSTEM_REGIONS = ("eu", "us", "other")


class Subject(PublicIdMixin, AccountScopedMixin, EncryptedContactMixin, TimestampMixin, db.Model):
    """A data subject of one account: a user of the customer, whose name, e-mail and customer
    id (`external_ref`) we hold, all three encrypted under the row's key (`key_id`)."""

    __tablename__ = "subjects"
    __label__ = "Subject"
    __table_args__ = (
        UniqueConstraint("account_id", "email_index"),
        Index("ix_subjects_account_id_external_ref_index", "account_id", "external_ref_index"),
        Index("ix_subjects_account_id_email_hash_index", "account_id", "email_hash_index"),
    )

    # The controller's customer id is personal data like the e-mail: encrypted, and found
    # through a keyed index (`database.ref_index`), never stored or compared in plaintext.
    external_ref_ct: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    external_ref_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Keyed index of the e-mail's SHA-256, for requests that name the subject by that hash
    # (OpenDSR `sha256` identities) and for the erasure ledger. Never the bare hash.
    email_hash_index: Mapped[str | None] = mapped_column(String(64), nullable=True)

    @property
    def external_ref(self) -> str | None:
        if self.external_ref_ct is None:
            return None
        return decrypt_field(
            self.__tablename__, self.public_id, "external_ref", self.external_ref_ct, self.key_id
        )

    @external_ref.setter
    def external_ref(self, value: str | None) -> None:
        """Assignment for code that has no account at hand: the index scope is read from
        the session (the account is usually loaded already)."""
        account = db.session.get(Account, self.account_id)
        self.set_external_ref(value, index_scope=str(account.public_id))

    def set_external_ref(self, value: str | None, *, index_scope: str) -> None:
        """Encrypt and index the customer id (None removes both). One key opens the whole
        row, so a row under an older key moves to the current one first."""
        if value is None:
            self.external_ref_ct = None
            self.external_ref_index = None
            return
        if self.public_id is None:
            self.public_id = uuid.uuid4()
        current = current_app.extensions["keyring"].current_id
        if self.key_id is not None and self.key_id != current and self.name_ct is not None:
            self.reencrypt()
        self.key_id = current
        self.external_ref_ct = encrypt_field(
            self.__tablename__, self.public_id, "external_ref", value
        )
        self.external_ref_index = ref_index(index_scope, value)

    def set_contact(self, *, name: str, email: str, index_scope: str) -> None:
        ref = self.external_ref  # read under the row's key before the key changes
        super().set_contact(name=name, email=email, index_scope=index_scope)
        self._seal_ref(ref)

    def reencrypt(self) -> None:
        """Re-encrypt name, e-mail and customer id under the current key (rotation)."""
        ref = self.external_ref
        super().reencrypt()
        self._seal_ref(ref)

    def _seal_ref(self, ref: str | None) -> None:
        if ref is not None:
            self.external_ref_ct = encrypt_field(
                self.__tablename__, self.public_id, "external_ref", ref
            )


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


# Bulk imports on SQLite stage their rows here, a chunk per short transaction, then publish
# them into subjects and holdings in one transaction (privacy.inventory.services). Nothing
# reads these tables as the account's data; they hold ciphertexts and keyed indexes only,
# and are emptied after the publication (or by `purge_staged` after a crash).


class StagedSubject(AccountScopedMixin, db.Model):
    """One row of a bulk import not published yet: the columns of its subject, ready."""

    __tablename__ = "staged_subjects"

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, index=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    name_ct: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    email_ct: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    key_id: Mapped[str] = mapped_column(String(32), nullable=False)
    email_index: Mapped[str] = mapped_column(String(64), nullable=False)
    email_hash_index: Mapped[str] = mapped_column(String(64), nullable=False)
    external_ref_ct: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    external_ref_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class StagedHolding(AccountScopedMixin, db.Model):
    """System `system_id` will hold the staged subject `subject_public_id`."""

    __tablename__ = "staged_holdings"

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, index=True)
    subject_public_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    system_id: Mapped[int] = mapped_column(
        ForeignKey("systems.id", ondelete="CASCADE"), nullable=False, index=True
    )
