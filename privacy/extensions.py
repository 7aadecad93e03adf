"""Extension objects (database, migrations, OpenAPI, Celery, rate limits, CSRF), bound in
create_app."""

from __future__ import annotations

import os
import random

from celery import Celery
from celery import Task
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase

from privacy import errors

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PrivacyApi(Api):
    """flask-smorest Api whose errors, ours and the framework's, share one shape."""

    def handle_http_exception(self, error):
        return errors.handle_http_exception(error)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = PrivacyApi()
# Limits are declared on the views that need them (sign-in, public forms); the client
# address is the proxy-corrected remote address (PRIVACY_PROXY_HOPS).
limiter = Limiter(key_func=get_remote_address, headers_enabled=True, strategy="moving-window")
# Form posts of the pages; checked in privacy.web before the view, never on /api/ routes
# (those authenticate with bearer tokens, which a cross-site form cannot send).
csrf = CSRFProtect()


def _sqlite_busy(exc: OperationalError) -> bool:
    return "database is locked" in str(getattr(exc, "orig", exc))


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app the Flask way: every task runs inside an app context."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                try:
                    return self.run(*args, **kwargs)
                except OperationalError as exc:
                    if not _sqlite_busy(exc) or self.request.called_directly:
                        raise
                    # SQLite (WAL) fails at once a transaction that read, then writes after
                    # another connection committed: run the task again on a fresh snapshot.
                    db.session.rollback()
                    pause = random.uniform(0.1, 1.0)  # noqa: S311 - jitter, not a secret
                    raise self.retry(exc=exc, countdown=pause) from None

    options = app.config["CELERY"].get("broker_transport_options") or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
