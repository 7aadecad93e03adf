"""Data-subject requests, their history, erasure instructions and status callbacks."""

from __future__ import annotations

import uuid
from datetime import datetime

from flask import current_app
from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import Uuid
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from privacy.database import AccountScopedMixin
from privacy.database import PublicIdMixin
from privacy.database import UTCDateTime
from privacy.extensions import db

KINDS = ("access", "portability", "erasure")
SOURCES = ("opendsr", "form")
# Our states, in lifecycle order; OPENDSR_STATUS maps them onto the spec's four.
STATES = (
    "received",
    "unverified",
    "verified",
    "in_progress",
    "completed",
    "rejected",
    "cancelled",
)
OPENDSR_STATUS = {
    "received": "pending",
    "unverified": "pending",
    "verified": "pending",
    "in_progress": "in_progress",
    "completed": "completed",
    "rejected": "cancelled",
    "cancelled": "cancelled",
}
FINAL = ("completed", "rejected", "cancelled")


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class DataSubjectRequest(PublicIdMixin, AccountScopedMixin, db.Model):
    """One access, portability or erasure request about one person in one account.

    The person's e-mail is kept encrypted (to write to them and to show the account's
    admins), and as the keyed index of its SHA-256 (to find them, and for the ledger).
    """

    __tablename__ = "dsr_requests"
    __label__ = "Request"
    __table_args__ = (
        UniqueConstraint("account_id", "subject_request_id"),
        CheckConstraint(f"kind IN {_in(KINDS)}", name="kind"),
        CheckConstraint(f"source IN {_in(SOURCES)}", name="source"),
        CheckConstraint(f"status IN {_in(STATES)}", name="status"),
        Index("ix_dsr_requests_account_id_status_due_at", "account_id", "status", "due_at"),
    )

    subject_request_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    # Who the request is about: the keyed index of the e-mail's SHA-256 and/or of the
    # controller's customer id, plus the e-mail itself (encrypted) when it was given raw.
    identity_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    customer_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    email_ct: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    message_ct: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    callback_urls: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    extension_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # rejection or exception
    exception: Mapped[str | None] = mapped_column(String(32), nullable=True)  # Art. 17(3) point
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    no_data_held: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    subject_ref: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    results_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The access package (or erasure receipt) in object storage, and its download link.
    results_prefix: Mapped[str | None] = mapped_column(String(300), nullable=True)
    download_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    download_ct: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    download_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the erasure's ledger entry was written (its key); set before anything is deleted.
    ledger_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A worker is erasing it until then; other deliveries of its task leave it alone, and the
    # sweep resumes it once this has passed (the worker died).
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    events: Mapped[list[RequestEvent]] = relationship(
        back_populates="request",
        order_by="RequestEvent.id",
        cascade="all, delete-orphan",
        lazy="selectin",
    )
    instructions: Mapped[list[ErasureInstruction]] = relationship(
        back_populates="request",
        order_by="ErasureInstruction.id",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    @property
    def opendsr_status(self) -> str:
        return OPENDSR_STATUS[self.status]

    # -- sealed fields: the requester's e-mail and message, and the download link's secret,
    # encrypted with the data keys and bound to this row and field (a ciphertext copied into
    # another row or column does not decrypt). `key_id` names the key of all three.

    def _aad(self, field: str) -> bytes:
        return f"{self.__tablename__}:{self.public_id}:{field}".encode()

    def seal_requester(self, *, email: str | None, message: str | None) -> None:
        """Encrypt the requester's (normalized) e-mail and message under the current key."""
        if not (email or message):
            return
        ring = current_app.extensions["keyring"]
        self.key_id = ring.current_id
        if email:
            self.email_ct = ring.encrypt(email, self._aad("email"))
        if message:
            self.message_ct = ring.encrypt(message, self._aad("message"))

    def unseal_email(self) -> str | None:
        """The requester's e-mail, when it was given raw (None for a hash or a customer id)."""
        if self.email_ct is None:
            return None
        ring = current_app.extensions["keyring"]
        return ring.decrypt(self.email_ct, self.key_id, self._aad("email"))

    def unseal_message(self) -> str | None:
        if self.message_ct is None:
            return None
        ring = current_app.extensions["keyring"]
        return ring.decrypt(self.message_ct, self.key_id, self._aad("message"))

    def seal_download(self, secret: str) -> None:
        """Encrypt the download link's secret under the current key. The key id travels with
        the ciphertext: keys may rotate between this and a read. A request without an e-mail
        or message takes the current key as its `key_id`, so that key rotation finds the
        link too."""
        ring = current_app.extensions["keyring"]
        self.download_ct = (
            ring.current_id.encode() + b"\n" + ring.encrypt(secret, self._aad("download"))
        )
        self.key_id = self.key_id or ring.current_id

    def unseal_download(self) -> str | None:
        """The secret of the current download link (None when there is none)."""
        if self.download_ct is None:
            return None
        ring = current_app.extensions["keyring"]
        key_id, _, ciphertext = bytes(self.download_ct).partition(b"\n")
        return ring.decrypt(ciphertext, key_id.decode(), self._aad("download"))

    def reencrypt(self) -> None:
        """Re-encrypt the sealed fields under the current key (rotation)."""
        email, message, secret = self.unseal_email(), self.unseal_message(), self.unseal_download()
        ring = current_app.extensions["keyring"]
        if email is not None:
            self.email_ct = ring.encrypt(email, self._aad("email"))
        if message is not None:
            self.message_ct = ring.encrypt(message, self._aad("message"))
        if secret is not None:
            self.download_ct = (
                ring.current_id.encode() + b"\n" + ring.encrypt(secret, self._aad("download"))
            )
        self.key_id = ring.current_id


class RequestEvent(db.Model):
    """One step in a request's history (status changes, extensions, notes); ids only."""

    __tablename__ = "dsr_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("dsr_requests.id", ondelete="CASCADE"), nullable=False, index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    request: Mapped[DataSubjectRequest] = relationship(back_populates="events")


class ErasureInstruction(db.Model):
    """Art. 19: erase the subject in one system (or sub-processor) that holds a copy."""

    __tablename__ = "dsr_erasure_instructions"
    __table_args__ = (
        UniqueConstraint("request_id", "target_ref"),
        CheckConstraint("state IN ('pending', 'confirmed')", name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("dsr_requests.id", ondelete="CASCADE"), nullable=False, index=True
    )
    public_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, nullable=False, unique=True, default=uuid.uuid4
    )
    # A snapshot: the system may be renamed or deleted later; the instruction stays.
    target_ref: Mapped[str] = mapped_column(String(64), nullable=False)
    target_name: Mapped[str] = mapped_column(String(200), nullable=False)
    target_kind: Mapped[str] = mapped_column(String(32), nullable=False)
    region: Mapped[str | None] = mapped_column(String(8), nullable=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    confirmed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)

    request: Mapped[DataSubjectRequest] = relationship(back_populates="instructions")


class CallbackDelivery(db.Model):
    """One status callback to one URL; failures stay visible to the account's admins."""

    __tablename__ = "dsr_callbacks"
    __table_args__ = (CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("dsr_requests.id", ondelete="CASCADE"), nullable=False, index=True
    )
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # the OpenDSR status sent
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Verification(db.Model):
    """The single-use link that confirms a web-form request came from the address's owner."""

    __tablename__ = "dsr_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("dsr_requests.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
