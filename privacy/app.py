"""The Flask application factory: config -> extensions -> blueprints -> errors -> commands."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from werkzeug.middleware.proxy_fix import ProxyFix

from privacy import ROOT
from privacy.database import WRITE_LOCK
from privacy.database import answer_busy
from privacy.database import view_writes


def create_app(overrides: dict | None = None) -> Flask:
    """Config -> extensions -> blueprints -> errors -> commands; `overrides` beat the env."""
    from privacy import config
    from privacy import errors
    from privacy import files
    from privacy import logs
    from privacy import pages
    from privacy import security
    from privacy.auth import google
    from privacy.crypto import BlindIndex
    from privacy.crypto import KeyRing
    from privacy.extensions import api
    from privacy.extensions import celery_init_app
    from privacy.extensions import db
    from privacy.extensions import limiter
    from privacy.extensions import migrate

    app = Flask(__name__, template_folder=str(ROOT / "templates"))
    app.config.update(config.load(ROOT))
    app.config.update(overrides or {})
    config.check_production(app.config)
    app.instance_path = app.config["INSTANCE_PATH"]
    files.private_sqlite(str(app.config["SQLALCHEMY_DATABASE_URI"]))
    app.json.sort_keys = False  # fields in the order the schemas declare them

    logs.configure_logging(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    app.extensions["keyring"] = KeyRing.parse(app.config["DATA_KEYS"])
    app.extensions["blind_index"] = BlindIndex.parse(app.config["INDEX_KEY"])

    if app.config["PROXY_HOPS"]:
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    api.init_app(app)
    _document_security(api)
    celery_init_app(app)
    limiter.init_app(app)
    google.init_app(app)

    logs.init_request_ids(app)
    security.init_app(app)
    pages.init_app(app)
    _register_blueprints(app, api)
    app.register_error_handler(errors.AppError, errors.handle_http_exception)
    app.register_error_handler(OperationalError, answer_busy)  # a busy database: 503
    _register_commands(app)
    return app


def _document_security(api) -> None:
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "API token prv_..."}
    )
    api.spec.options["security"] = [{"bearerAuth": []}]


def _register_blueprints(app: Flask, api) -> None:
    from privacy import health
    from privacy.accounts import pages as account_pages
    from privacy.accounts import routes as accounts_routes
    from privacy.audit import pages as audit_pages
    from privacy.audit import routes as audit_routes
    from privacy.auth import google
    from privacy.auth import pages as auth_pages
    from privacy.backups import models as backup_models  # noqa: F401 - tables
    from privacy.backups import pages as backup_pages
    from privacy.dsr import form as dsr_form
    from privacy.dsr import opendsr
    from privacy.dsr import pages as dsr_pages
    from privacy.dsr import results as dsr_results
    from privacy.dsr import routes as dsr_routes
    from privacy.inventory import routes as inventory_routes
    from privacy.processors import customer_pages as processor_account_pages
    from privacy.processors import document_routes as processor_documents
    from privacy.processors import pages as processor_pages
    from privacy.processors import routes as processor_routes
    from privacy.scrubber import routes as scrubber_routes
    from privacy.support import pages as support_pages
    from privacy.support import routes as support_routes

    app.register_blueprint(health.bp)
    app.register_blueprint(auth_pages.bp)
    app.register_blueprint(google.bp)
    app.register_blueprint(account_pages.bp)
    app.register_blueprint(support_pages.bp)
    app.register_blueprint(audit_pages.bp)
    app.register_blueprint(backup_pages.bp)
    app.register_blueprint(opendsr.bp)
    app.register_blueprint(dsr_results.bp)
    app.register_blueprint(dsr_pages.bp)
    app.register_blueprint(dsr_form.bp)
    app.register_blueprint(processor_pages.bp)
    app.register_blueprint(processor_account_pages.bp)
    api.register_blueprint(accounts_routes.bp)
    api.register_blueprint(inventory_routes.bp)
    api.register_blueprint(audit_routes.bp)
    api.register_blueprint(scrubber_routes.bp)
    api.register_blueprint(support_routes.bp)
    api.register_blueprint(dsr_routes.bp)
    api.register_blueprint(processor_routes.bp)
    api.register_blueprint(processor_documents.bp)


def _register_commands(app: Flask) -> None:
    from privacy import mail
    from privacy.accounts import cli as accounts_cli
    from privacy.audit import cli as audit_cli
    from privacy.backups import cli as backups_cli
    from privacy.keys import cli as keys_cli
    from privacy.processors import cli as processors_cli
    from privacy.support import cli as support_cli

    app.cli.add_command(accounts_cli.accounts)
    app.cli.add_command(audit_cli.audit)
    app.cli.add_command(backups_cli.backups)
    app.cli.add_command(keys_cli.keys)
    app.cli.add_command(processors_cli.processors)
    app.cli.add_command(support_cli.operators)
    app.cli.add_command(mail.cli)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: enforce foreign keys, WAL for concurrent readers, wait instead of failing on locks.

    isolation_level=None plus an explicit BEGIN (below) lets SQLAlchemy manage transactions
    and SAVEPOINTs, which the driver's own transaction handling breaks.
    """
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL is crash-safe for the application; only an OS crash or power loss
        # may drop the last commits. The embedded default trades that for fewer fsyncs.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        # Deleted rows are overwritten, not left in free pages of the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    """SQLite: requests that change data begin holding the write lock (BEGIN IMMEDIATE).

    In WAL mode a deferred transaction that has read cannot start writing once another
    connection has committed since its first read: it fails at once with "database is
    locked", and the busy timeout does not help. An immediate one waits on the busy timeout
    for the lock instead. GET requests (which call `begin_write` before they write), the
    worker (whose write transactions start with a write) and the CLI keep a deferred BEGIN,
    so their reads never queue behind writers.
    """
    if conn.dialect.name != "sqlite":
        return
    if conn.get_execution_options().get(WRITE_LOCK) or view_writes():
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
