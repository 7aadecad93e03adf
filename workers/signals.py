"""Fork safety: each forked worker child opens its own database connections."""

from celery.signals import worker_process_init

from privacy.extensions import db


@worker_process_init.connect
def reset_database_pool(**_kwargs):
    # Connections inherited from the parent would be shared across processes and corrupt.
    from workers.celery_app import flask_app

    with flask_app.app_context():
        db.engine.dispose(close=False)
