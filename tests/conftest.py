"""Test fixtures: one migrated database per session, cleaned between tests, and small factories."""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Before the app is imported anywhere: never touch the developer's instance/ folder.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="privacy-tests-"))
atexit.register(shutil.rmtree, _SESSION_DIR, ignore_errors=True)
os.environ["PRIVACY_INSTANCE_PATH"] = str(_SESSION_DIR / "instance")
os.environ.pop("PRIVACY_ENV", None)

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import text  # noqa: E402

from privacy import create_app  # noqa: E402
from privacy import database  # noqa: E402
from privacy.accounts import services as accounts  # noqa: E402
from privacy.extensions import db  # noqa: E402
from privacy.extensions import limiter  # noqa: E402
from tests.queue import JobQueue  # noqa: E402

TEST_DATA_KEYS = "t1:" + base64.b64encode(b"\x01" * 32).decode()
TEST_INDEX_KEY = base64.b64encode(b"\x02" * 32).decode()


def database_url() -> str:
    return (
        os.environ.get("PRIVACY_TEST_DATABASE_URL") or f"sqlite:///{_SESSION_DIR / 'test.sqlite3'}"
    )


def app_config(**extra) -> dict:
    """The config every test app starts from; tests that build their own app extend it."""
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url(),
        "SECRET_KEY": "test-secret",
        "BASE_URL": "http://127.0.0.1:8000",
        "DATA_KEYS": TEST_DATA_KEYS,
        "INDEX_KEY": TEST_INDEX_KEY,
        "STORAGE_URL": f"file://{_SESSION_DIR / 'storage'}",
        "OUTBOX_PATH": str(_SESSION_DIR / "outbox"),
        # Never eager: tasks run when a test runs them (tests/queue.py), or in a real worker.
        "CELERY": {"broker_url": "memory://", "task_ignore_result": True},
    }
    config.update(extra)
    return config


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture(scope="session")
def app():
    app = create_app(app_config())
    database.init_migrations(app)
    with app.app_context():
        upgrade()
    return app


@pytest.fixture(autouse=True)
def _app_context(request):
    """Each test runs in an app context and leaves empty tables behind."""
    if "app" not in request.fixturenames and not request.node.get_closest_marker("db"):
        yield
        return
    app = request.getfixturevalue("app")
    # Tests that build a second app make its Celery the default; take ours back.
    app.extensions["celery"].set_default()
    app.extensions["celery"].set_current()
    limiter.reset()  # rate-limit counters (memory) do not carry over between tests
    with app.app_context():
        yield
        db.session.rollback()
        _truncate_all()
        db.session.remove()


def _truncate_all() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - table names are ours
    db.session.commit()


@pytest.fixture(autouse=True)
def queue(request, monkeypatch) -> JobQueue:
    """What the code under test enqueued (nothing runs until the test runs it)."""
    from celery.app.task import Task

    if "app" in request.fixturenames or request.node.get_closest_marker("db"):
        celery = request.getfixturevalue("app").extensions["celery"]
    else:
        celery = None
    jobs = JobQueue(celery)

    def apply_async(task, args=None, kwargs=None, **options):
        return jobs.record(task, args, kwargs, **options)

    monkeypatch.setattr(Task, "apply_async", apply_async)
    return jobs


class Outbox:
    """The outbox folder as the worker fills it: reading it first runs the mail jobs queued
    so far (mail.send_queued), as the worker would have by then."""

    def __init__(self, folder: Path, queue: JobQueue) -> None:
        self.folder = folder
        self.queue = queue

    def deliver(self) -> None:
        self.queue.run("mail.send_queued")

    def messages(self) -> list:
        from email import policy
        from email.parser import BytesParser

        self.deliver()
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(p.read_bytes()) for p in sorted(self.folder.glob("*.eml"))]

    def exists(self) -> bool:
        self.deliver()
        return self.folder.exists()

    def glob(self, pattern: str):
        self.deliver()
        return self.folder.glob(pattern)


@pytest.fixture
def outbox(app, queue, monkeypatch, tmp_path) -> Outbox:
    folder = tmp_path / "outbox"
    monkeypatch.setitem(app.config, "OUTBOX_PATH", str(folder))
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    return Outbox(folder, queue)


@pytest.fixture
def client(app):
    return app.test_client()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


class Tenant:
    """An account with its first admin and that admin's API token, for API tests."""

    def __init__(self, account, admin, token):
        self.account = account
        self.admin = admin
        self.token = token
        self.headers = bearer(token)

    def token_for(self, role: str = "member", scopes: list[str] | None = None) -> dict:
        _, secret = accounts.create_token(
            self.account, name=f"{role} token", role=role, scopes=scopes, actor="test"
        )
        db.session.commit()
        return bearer(secret)


def make_tenant(
    name: str = "Acme GmbH", admin_email: str = "admin@acme.example", region: str = "eu"
) -> Tenant:
    account, admin, token = accounts.create_account(
        name=name, region=region, admin_email=admin_email, admin_name="Ada Admin", actor="test"
    )
    db.session.commit()
    return Tenant(account, admin, token)


@pytest.fixture
def tenant(app) -> Tenant:
    return make_tenant()


@pytest.fixture
def other_tenant(app) -> Tenant:
    return make_tenant(name="Other Ltd", admin_email="boss@other.example")
