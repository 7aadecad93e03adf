"""Re-encrypt encrypted contact fields under the newest data key, in resumable batches."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from sqlalchemy import func
from sqlalchemy import select

from privacy.accounts.models import Member
from privacy.extensions import db
from privacy.inventory.models import Subject

ENCRYPTED_MODELS = (Member, Subject)


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
            rows = list(
                db.session.scalars(
                    select(model)
                    .where(model.key_id != ring.current_id)
                    .order_by(model.id)
                    .limit(batch_size)
                )
            )
            if not rows:
                break
            for row in rows:
                row.reencrypt()
            db.session.commit()
            total += len(rows)
            if progress:
                progress(model.__tablename__, len(rows))
    return total
