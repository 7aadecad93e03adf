"""The Flask application factory: config -> extensions -> blueprints -> errors -> commands."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.exc import OperationalError
from werkzeug.middleware.proxy_fix import ProxyFix

from privacy import config
from privacy import database
from privacy import errors
from privacy import files
from privacy import health
from privacy import jobs
from privacy import logs
from privacy import pages
from privacy import security
from privacy.accounts import cli as accounts_cli
from privacy.accounts import pages as account_pages
from privacy.accounts import routes as accounts_routes
from privacy.audit import cli as audit_cli
from privacy.audit import pages as audit_pages
from privacy.audit import routes as audit_routes
from privacy.auth import google
from privacy.auth import pages as auth_pages
from privacy.backups import cli as backups_cli
from privacy.backups import models as backup_models  # noqa: F401 - tables
from privacy.backups import pages as backup_pages
from privacy.crypto import BlindIndex
from privacy.crypto import KeyRing
from privacy.dsr import pages as dsr_pages
from privacy.dsr.routes import api as dsr_routes
from privacy.dsr.routes import form as dsr_form
from privacy.dsr.routes import opendsr
from privacy.dsr.routes import results as dsr_results
from privacy.extensions import api
from privacy.extensions import db
from privacy.extensions import limiter
from privacy.inventory import routes as inventory_routes
from privacy.keys import cli as keys_cli
from privacy.mail import cli as mail_cli
from privacy.paths import ROOT
from privacy.processors import cli as processors_cli
from privacy.processors.pages import account as processor_account_pages
from privacy.processors.pages import register as processor_pages
from privacy.processors.routes import documents as processor_documents
from privacy.processors.routes import register as processor_routes
from privacy.scrubber import routes as scrubber_routes
from privacy.support import cli as support_cli
from privacy.support import pages as support_pages
from privacy.support import routes as support_routes


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app; `overrides` beat the environment (PRIVACY_*) and the defaults."""
    app = Flask(__name__, template_folder=str(ROOT / "templates"))
    load_config(app, overrides)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def load_config(app: Flask, overrides: dict | None) -> None:
    """Defaults, then PRIVACY_* environment, then `overrides`; refused in production when
    unsafe (config.check_production). Also the logging it asks for."""
    app.config.update(config.load(ROOT))
    app.config.update(overrides or {})
    config.check_production(app.config)
    app.instance_path = app.config["INSTANCE_PATH"]
    files.private_sqlite(str(app.config["SQLALCHEMY_DATABASE_URI"]))
    app.json.sort_keys = False  # fields in the order the schemas declare them
    logs.configure_logging(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])


def register_extensions(app: Flask) -> None:
    """Keys, the proxy in front, the database (with its concurrency rules), migrations, the
    API, Celery, rate limits, Google sign-in; then the request hooks: request ids and the
    access log, security headers, CSRF on form posts."""
    app.extensions["keyring"] = KeyRing.parse(app.config["DATA_KEYS"])
    app.extensions["blind_index"] = BlindIndex.parse(app.config["INDEX_KEY"])
    if app.config["PROXY_HOPS"]:
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    db.init_app(app)
    database.init_app(app)
    api.init_app(app)
    jobs.celery_init_app(app)
    limiter.init_app(app)
    google.init_app(app)
    logs.init_request_ids(app)
    security.init_app(app)
    pages.init_app(app)


def register_blueprints(app: Flask) -> None:
    """The pages' and the API's blueprints."""
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


def register_error_handlers(app: Flask) -> None:
    """Our errors in the one shape (the API's own handler covers the rest); a busy database
    answers 503."""
    app.register_error_handler(errors.AppError, errors.handle_http_exception)
    app.register_error_handler(OperationalError, database.answer_busy)


def register_commands(app: Flask) -> None:
    """The `flask` command groups."""
    app.cli.add_command(database.MigrationCommands())
    app.cli.add_command(accounts_cli.accounts)
    app.cli.add_command(audit_cli.audit)
    app.cli.add_command(backups_cli.backups)
    app.cli.add_command(keys_cli.keys)
    app.cli.add_command(processors_cli.processors)
    app.cli.add_command(support_cli.operators)
    app.cli.add_command(mail_cli.mail)
