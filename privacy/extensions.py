"""Extension objects (database, migrations, OpenAPI, Celery, rate limits, CSRF), bound in
create_app."""

from __future__ import annotations

import json
import pkgutil
import random

import flask_smorest
from celery import Celery
from celery import Task
from celery.exceptions import Retry
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
from webargs.core import missing
from webargs.flaskparser import FlaskParser
from webargs.flaskparser import is_json_request

from privacy import errors
from privacy import files
from privacy import schemas
from privacy import validation

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


class JsonBodyParser(FlaskParser):
    """webargs' parser, with clear answers to the two commonest mistakes with a JSON body,
    and a refusal of JSON that would only fail deeper in.

    A body sent without `Content-Type: application/json` (curl's -d sends a form type) is
    415 naming the type, not 422 "missing field" for fields that were sent; a body that is
    not JSON is 400 saying where it breaks; JSON nested too deeply, with a lone surrogate or
    a NUL, NaN or an integer of thousands of digits is 400 naming which (validation.load_json),
    and so is a query string with a NUL. None of them repeats the input.
    """

    def _raw_load_json(self, req):
        if not is_json_request(req):
            if req.get_data(cache=True):
                raise errors.UnsupportedMediaType(
                    f"Send the body as JSON with Content-Type: application/json "
                    f"(it came as {req.mimetype or 'no type'})."
                )
            return missing
        raw = req.get_data(cache=True)
        if not raw:
            return missing
        try:
            return validation.load_json(raw)
        except validation.UnsafeJson as exc:
            raise errors.BadRequest(
                f"The body is not acceptable JSON: {exc}.", errors={"json": [f"{exc}"]}
            ) from None

    def load_querystring(self, req, schema):
        values = req.args.items(multi=True)
        if any("\x00" in key or "\x00" in value for key, value in values):
            # No argument of ours holds one, and PostgreSQL refuses it in a query.
            raise errors.BadRequest(
                "The query string holds a NUL character (%00).",
                errors={"query": ["a NUL character (%00)"]},
            )
        return super().load_querystring(req, schema)

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        if isinstance(error, json.JSONDecodeError):
            where = f"line {error.lineno}, column {error.colno} (character {error.pos})"
            raise errors.BadRequest(
                f"The body is not valid JSON: {error.msg} at {where}.",
                errors={"json": [f"{error.msg} at {where}"]},
            )
        raise errors.BadRequest(
            "The body is not valid JSON: it is not UTF-8 text.",
            errors={"json": ["not UTF-8 text"]},
        )


class Blueprint(flask_smorest.Blueprint):
    """The API's blueprints: flask-smorest's, with JsonBodyParser for their arguments."""

    ARGUMENTS_PARSER = JsonBodyParser()


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = PrivacyApi(spec_kwargs={"extra_plugins": [schemas.OpenApiExtras()]})
# Limits are declared on the views that need them (sign-in, public forms); the client
# address is the proxy-corrected remote address (PRIVACY_PROXY_HOPS).
limiter = Limiter(key_func=get_remote_address, headers_enabled=True, strategy="moving-window")
# Form posts of the pages; checked in privacy.web before the view, never on /api/ routes
# (those authenticate with bearer tokens, which a cross-site form cannot send).
csrf = CSRFProtect()


def _sqlite_busy(exc: OperationalError) -> bool:
    return "database is locked" in str(getattr(exc, "orig", exc))


def task_packages() -> list[str]:
    """The packages of privacy/ (its domains): where Celery looks for `tasks` modules."""
    import privacy

    return [f"privacy.{m.name}" for m in pkgutil.iter_modules(privacy.__path__) if m.ispkg]


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
    # services queue tasks by name (privacy.jobs), and the worker finds them without a list.
    celery_app.autodiscover_tasks(task_packages(), force=True)
    app.extensions["celery"] = celery_app
    return celery_app
