"""Background work: the Celery app bound to the Flask app, and tasks queued by services once
the transaction commits, never before.

A task must find the rows it is about, and must not run for work that was rolled back.
"""

from __future__ import annotations

import logging
import pkgutil
import random

from celery import Celery
from celery import Task
from celery.exceptions import Retry
from flask import Flask
from flask import current_app
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from privacy import database
from privacy import files
from privacy.extensions import db
from privacy.paths import PACKAGE

logger = logging.getLogger(__name__)
_PENDING = "privacy.jobs.pending"


def task_packages() -> list[str]:
    """The packages of privacy/ (its domains): where Celery looks for `tasks` modules."""
    return [f"privacy.{m.name}" for m in pkgutil.iter_modules([str(PACKAGE)]) if m.ispkg]


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app the Flask way: every task runs inside an app context, and a task
    that met a busy database (database.is_busy) runs again."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                try:
                    return self.run(*args, **kwargs)
                except OperationalError as exc:
                    if not database.is_busy(exc) or self.request.called_directly:
                        raise
                    # SQLite (WAL) fails at once a transaction that read, then writes after
                    # another connection committed: run the task again on a fresh snapshot.
                    # A busy database is not a failed try, so the run keeps its retry count
                    # (Task.retry would add one, and use up a task's max_retries).
                    db.session.rollback()
                    pause = random.uniform(0.1, 1.0)  # noqa: S311 - jitter, not a secret
                    again = self.signature_from_request(
                        countdown=pause, retries=self.request.retries
                    )
                    again.apply_async()
                    raise Retry(exc=exc, when=pause) from None

    options = app.config["CELERY"].get("broker_transport_options") or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            files.private_dirs(options[key])

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    # Every domain's tasks module (privacy/<domain>/tasks.py), registered in every process:
    # services queue tasks by name (after_commit), and the worker finds them without a list.
    celery_app.autodiscover_tasks(task_packages(), force=True)
    app.extensions["celery"] = celery_app
    return celery_app


def after_commit(task, *args) -> None:
    """Queue `task(*args)` after the current transaction commits; drop it on rollback.

    `task` is a task object, or its registered name ("dsr.process"), so that a service need
    not import the tasks module that calls it; every process registers every domain's tasks
    when the app is made (celery_init_app). Arguments are ids: they travel through the broker
    and appear in the worker's logs.
    """
    db.session().info.setdefault(_PENDING, []).append((task, args))


# Bound to the app's sessions (Flask-SQLAlchemy's session factory), not to every Session of
# the process: a session made apart (a restore's target) has nothing to enqueue.
@event.listens_for(db.session, "after_commit")
def _enqueue(session) -> None:
    for task, args in session.info.pop(_PENDING, ()):
        try:
            if isinstance(task, str):
                task = current_app.extensions["celery"].tasks[task]
            task.delay(*args)
        except Exception as exc:  # the commit stands; a failed enqueue must not undo the answer
            name = task if isinstance(task, str) else task.name
            logger.error("task %s could not be queued: %s", name, type(exc).__name__)


@event.listens_for(db.session, "after_rollback")
def _drop(session) -> None:
    session.info.pop(_PENDING, None)
