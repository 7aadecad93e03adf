"""Fork safety: each forked worker child opens its own database connections."""

from __future__ import annotations

from celery.signals import worker_process_init
from flask import Flask

from privacy.extensions import db


def connect(flask_app: Flask) -> None:
    """Have every forked worker child forget the database connections of `flask_app` that it
    inherited from the parent: shared across processes, they would be corrupted."""

    def reset_database_pool(**_kwargs):
        with flask_app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)

    worker_process_init.connect(reset_database_pool, weak=False)
