"""Per-account scrubber settings: opt-in entities, custom patterns, deny and allow lists."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from privacy.database import UTCDateTime
from privacy.database import utcnow
from privacy.extensions import db


class ScrubSettings(db.Model):
    """One row per account that changed the defaults; no row means the defaults."""

    __tablename__ = "scrub_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    entities: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    patterns: Mapped[dict[str, list[str]]] = mapped_column(JSON, nullable=False, default=dict)
    deny: Mapped[dict[str, list[str]]] = mapped_column(JSON, nullable=False, default=dict)
    allow: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
