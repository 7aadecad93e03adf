"""Background work queued by services: enqueued once the transaction commits, never before.

A task must find the rows it is about, and must not run for work that was rolled back.
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)
_PENDING = "privacy.jobs.pending"


def after_commit(task, *args) -> None:
    """Queue `task(*args)` after the current transaction commits; drop it on rollback.

    `task` is the task's registered name ("dsr.process"), so that a service need not import
    the tasks module that calls it; every process registers every domain's tasks when the
    app is made (privacy.extensions.celery_init_app). Arguments are ids: they travel through
    the broker and appear in the worker's logs.
    """
    from privacy.extensions import db

    db.session().info.setdefault(_PENDING, []).append((task, args))


@event.listens_for(Session, "after_commit")
def _enqueue(session) -> None:
    for task, args in session.info.pop(_PENDING, ()):
        try:
            if isinstance(task, str):
                task = current_app.extensions["celery"].tasks[task]
            task.delay(*args)
        except Exception as exc:  # the commit stands; a failed enqueue must not undo the answer
            name = task if isinstance(task, str) else task.name
            logger.error("task %s could not be queued: %s", name, type(exc).__name__)


@event.listens_for(Session, "after_rollback")
def _drop(session) -> None:
    session.info.pop(_PENDING, None)
