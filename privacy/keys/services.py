"""Re-encrypt what the data keys protect under the newest key, in resumable batches: the
contact fields of subjects, members and operators, requests' e-mails, messages and
download links, and webhook secrets."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from sqlalchemy import func
from sqlalchemy import select

from privacy.accounts.models import Member
from privacy.database import begin_write
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db
from privacy.inventory.models import Subject
from privacy.processors.models import Webhook
from privacy.support.models import Operator

# Each re-encrypts its own sealed fields (`reencrypt()`) and records the key in `key_id`.
ENCRYPTED_MODELS = (Member, Subject, Operator, DataSubjectRequest, Webhook)


def _reencrypt(row) -> None:
    row.reencrypt()


def pending(model) -> int:
    """Rows of `model` not yet under the current key."""
    current = current_app.extensions["keyring"].current_id
    return db.session.scalar(select(func.count()).select_from(model).where(model.key_id != current))


def rotate(*, batch_size: int = 500, progress: Callable[[str, int], None] | None = None) -> int:
    """Re-encrypt every row whose key is not the current one; commit per batch.

    Each batch is its own transaction, so an interrupted run resumes where it stopped:
    rows already moved no longer match `key_id != current`. The blind index is unchanged.
    """
    ring = current_app.extensions["keyring"]
    total = 0
    for model in ENCRYPTED_MODELS:
        while True:
            # Each batch reads, then writes: on SQLite (the service running meanwhile) it
            # holds the write lock from its start, or another connection's commit fails it.
            begin_write()
            rows = list(
                db.session.scalars(
                    select(model)
                    .where(model.key_id != ring.current_id)
                    .order_by(model.id)
                    .limit(batch_size)
                )
            )
            if not rows:
                db.session.rollback()  # end the write transaction begun for this last look
                break
            for row in rows:
                _reencrypt(row)
            db.session.commit()
            total += len(rows)
            if progress:
                progress(model.__tablename__, len(rows))
    return total
