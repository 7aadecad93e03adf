"""Concurrent writers on the embedded SQLite database (WAL) wait their turn instead of failing.

A deferred transaction that has read cannot take the write lock once another connection has
committed since its first read: SQLite answers "database is locked" at once, whatever the
busy timeout. Requests that change data begin with the write lock (BEGIN IMMEDIATE); a GET
that writes calls `begin_write` first. A request that cannot get the lock within the busy
timeout answers 503 with Retry-After, and a bulk import holds the lock a chunk at a time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.orm import Session

from privacy import database
from privacy import jobs
from privacy.accounts.models import Account
from privacy.auth import permissions
from privacy.auth import sessions
from privacy.auth.models import UserSession
from privacy.crypto import token_hash
from privacy.database import begin_write
from privacy.database import utcnow
from privacy.extensions import db
from privacy.inventory.models import StagedSubject
from privacy.inventory.models import Subject

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("PRIVACY_TEST_DATABASE_URL")), reason="SQLite's write lock only"
)

THREADS = 8
EACH = 6


def _together(app, work) -> list:
    """`work(number)` in THREADS threads that start at once, each in its own app context."""
    start = threading.Barrier(THREADS)

    def run(number):
        with app.app_context():
            start.wait()
            try:
                return work(number)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, range(THREADS)))


def _session_row(hashed: str, member_id: int, account_id: int) -> UserSession:
    now = utcnow()
    return UserSession(
        token_hash=hashed,
        member_id=member_id,
        account_id=account_id,
        method="email",
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=1),
    )


def _browser_session(app, member_id: int, account_id: int):
    """A test client signed in through a session row of its own."""
    secret = secrets.token_urlsafe(32)
    db.session.add(_session_row(token_hash(secret), member_id, account_id))
    db.session.commit()
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["sid"] = secret
    return client


def test_concurrent_posts_that_read_then_write_all_succeed(app, tenant):
    client = app.test_client()

    def post_subjects(number):
        statuses = []
        for index in range(EACH):
            response = client.post(
                "/api/v1/subjects",
                json={"name": "Sam Subject", "email": f"sam-{number}-{index}@example.org"},
                headers=tenant.headers,
            )
            statuses.append(response.status_code)
        return statuses

    results = _together(app, post_subjects)

    assert results == [[201] * EACH] * THREADS
    assert db.session.scalar(select(func.count()).select_from(Subject)) == THREADS * EACH


def test_concurrent_gets_that_record_their_tokens_use_all_succeed(app, tenant, monkeypatch):
    # Every request writes its token's last use after reading the token.
    monkeypatch.setattr(permissions, "LAST_USED_GRANULARITY", timedelta(0))
    client = app.test_client()
    headers = [tenant.token_for("member") for _ in range(THREADS)]

    def get_subjects(number):
        return [
            client.get("/api/v1/subjects", headers=headers[number]).status_code for _ in range(EACH)
        ]

    results = _together(app, get_subjects)

    assert results == [[200] * EACH] * THREADS


def test_concurrent_pages_that_touch_their_session_all_succeed(app, tenant, monkeypatch):
    # Every page view writes its session's last-seen time after reading the session.
    monkeypatch.setattr(sessions, "TOUCH_GRANULARITY", timedelta(0))
    browsers = [_browser_session(app, tenant.admin.id, tenant.account.id) for _ in range(THREADS)]

    def view_members(number):
        return [browsers[number].get("/members").status_code for _ in range(EACH)]

    results = _together(app, view_members)

    assert results == [[200] * EACH] * THREADS


def test_begin_write_lets_a_transaction_read_then_write(app, tenant):
    member_id, account_id = tenant.admin.id, tenant.account.id
    db.session.rollback()  # no snapshot of ours from before the threads' commits

    def read_then_write(number):
        for _ in range(EACH):
            begin_write()
            count = db.session.scalar(select(func.count()).select_from(UserSession))
            hashed = token_hash(f"{number}-{count}-{secrets.token_hex(8)}")
            db.session.add(_session_row(hashed, member_id, account_id))
            db.session.commit()

    _together(app, read_then_write)

    assert db.session.scalar(select(func.count()).select_from(UserSession)) == THREADS * EACH


def test_key_rotation_waits_for_a_writer_instead_of_failing(app, client, tenant, monkeypatch):
    """`flask keys rotate` runs beside the live service: a commit by another connection
    between a batch's read and its write must not fail the batch."""
    from privacy.crypto import KeyRing
    from privacy.crypto import new_key_entry
    from privacy.keys import services as keys

    for n in range(3):
        client.post(
            "/api/v1/subjects",
            json={"name": f"Person {n}", "email": f"person{n}@example.org"},
            headers=tenant.headers,
        )
    db.session.commit()
    real_reencrypt = keys._reencrypt
    writer_done = threading.Event()

    def another_connection_commits():
        with app.app_context():
            # Any write that changes a row will do (one that changes nothing leaves the
            # rotation's snapshot current).
            db.session.execute(Account.__table__.update().values(name=Account.name + "."))
            db.session.commit()
            db.session.remove()
        writer_done.set()

    def reencrypt_while_another_writes(row):
        if not writer_done.is_set() and not getattr(reencrypt_while_another_writes, "ran", 0):
            reencrypt_while_another_writes.ran = 1
            threading.Thread(target=another_connection_commits).start()
            # With the write lock held the writer waits for our commit; without it, it
            # commits now and our batch's write fails with "database is locked".
            writer_done.wait(0.5)
        return real_reencrypt(row)

    monkeypatch.setattr(keys, "_reencrypt", reencrypt_while_another_writes)
    old_ring = app.extensions["keyring"]
    app.extensions["keyring"] = KeyRing.parse(f"{app.config['DATA_KEYS']},{new_key_entry('k2')}")
    try:
        assert keys.rotate(batch_size=2) == 3 + 1  # three subjects and the admin member
    finally:
        app.extensions["keyring"] = old_ring
    assert writer_done.wait(10)  # and the other writer got its turn


def test_a_task_that_reads_then_writes_runs_again_after_another_commit(app, tenant, queue):
    """Worker tasks begin deferred (their reads must not hold the write lock); one whose
    write fails because another connection committed after its read is run again."""
    from celery import shared_task

    runs = []

    def another_connection_commits():
        with app.app_context():
            db.session.execute(Account.__table__.update().values(name=Account.name + "."))
            db.session.commit()
            db.session.remove()

    @shared_task(name="tests.read_then_write")
    def read_then_write():
        runs.append(db.session.scalar(select(func.count()).select_from(Subject)))  # a read
        if len(runs) == 1:
            writer = threading.Thread(target=another_connection_commits)
            writer.start()
            writer.join()
        db.session.execute(Account.__table__.update().values(region=Account.region))
        db.session.commit()
        return len(runs)

    db.session.commit()
    read_then_write.delay()
    first, second = queue.run("tests.read_then_write")

    assert first.retried and second.result == 2
    # Run again shortly, and a busy database is not a failed try: the retry count stays.
    again = queue.ran[1].job
    assert 0 < again.countdown <= 1 and again.retries == 0


@contextlib.contextmanager
def _busy_timeout(app, milliseconds: int):
    """Every connection the app checks out waits at most `milliseconds` for the lock (the
    service's own bound is longer; the behaviour is the same, the test is quicker)."""

    def shorten(dbapi_connection, connection_record, connection_proxy):
        dbapi_connection.execute(f"PRAGMA busy_timeout={milliseconds}")

    event.listen(db.engine, "checkout", shorten)
    try:
        yield
    finally:
        event.remove(db.engine, "checkout", shorten)


@contextlib.contextmanager
def _write_lock_held_elsewhere():
    """Another process's connection holding the database's write lock."""
    other = sqlite3.connect(db.engine.url.database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_write_that_cannot_get_the_lock_answers_503_with_retry_after(app, client, tenant):
    db.session.commit()
    with _busy_timeout(app, 200), _write_lock_held_elsewhere():
        response = client.post(
            "/api/v1/subjects",
            json={"name": "Sam Subject", "email": "sam@example.org"},
            headers=tenant.headers,
        )
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert response.json == {
            "code": 503,
            "status": "Service Unavailable",
            "message": "The database is busy; retry shortly.",
        }
    # Nothing of it stays, and the same request goes through once the lock is free.
    assert db.session.scalar(select(func.count()).select_from(Subject)) == 0
    again = client.post(
        "/api/v1/subjects",
        json={"name": "Sam Subject", "email": "sam@example.org"},
        headers=tenant.headers,
    )
    assert again.status_code == 201


def test_a_get_that_writes_answers_503_too(app, client, tenant, monkeypatch):
    monkeypatch.setattr(permissions, "LAST_USED_GRANULARITY", timedelta(0))
    db.session.commit()
    with _busy_timeout(app, 200), _write_lock_held_elsewhere():
        response = client.get("/api/v1/subjects", headers=tenant.headers)
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert client.get("/api/v1/subjects", headers=tenant.headers).status_code == 200


def test_a_bulk_import_lets_other_tenants_write_while_it_runs(
    app, tenant, other_tenant, monkeypatch
):
    """The import stages its rows a chunk per transaction: between two chunks another
    tenant's write gets the lock (within a short busy timeout, or it would be 503), and none
    of the import's rows is the account's data before the import is published."""
    from privacy.inventory import services

    monkeypatch.setattr(services, "IMPORT_CHUNK", 5)
    rows = "".join(f"Person {n},p{n}@example.org,cust-{n}\n" for n in range(23))
    body = "name,email,external_ref\n" + rows
    first_chunk_staged, other_wrote = threading.Event(), threading.Event()
    real_stage = services._stage_chunk

    def stage_then_wait(*args):
        real_stage(*args)
        if not first_chunk_staged.is_set():
            first_chunk_staged.set()
            other_wrote.wait(10)

    monkeypatch.setattr(services, "_stage_chunk", stage_then_wait)
    answers = []

    def run_import():
        answers.append(
            app.test_client().post(
                "/api/v1/subjects/import",
                data=body,
                content_type="text/csv",
                headers=tenant.headers,
            )
        )

    db.session.commit()
    with _busy_timeout(app, 1000):
        importer = threading.Thread(target=run_import)
        importer.start()
        try:
            assert first_chunk_staged.wait(10)
            other = app.test_client().post(
                "/api/v1/subjects",
                json={"name": "Olga Other", "email": "olga@other.example"},
                headers=other_tenant.headers,
            )
            listed = app.test_client().get("/api/v1/subjects", headers=tenant.headers)
            staged = db.session.scalar(select(func.count()).select_from(StagedSubject))
            db.session.commit()
        finally:
            other_wrote.set()
            importer.join(30)

    assert other.status_code == 201  # while the import was in progress
    assert listed.status_code == 200 and listed.json["items"] == []  # nothing visible yet
    assert staged == 5
    assert answers[0].status_code == 201 and answers[0].json["imported"] == 23
    assert db.session.scalar(select(func.count()).select_from(Subject)) == 23 + 1
    assert db.session.scalar(select(func.count()).select_from(StagedSubject)) == 0


def test_lock_row_takes_the_write_lock_first_and_returns_the_row_as_it_is_now(app, tenant):
    db.session.commit()
    account = db.session.get(Account, tenant.account.id)
    with app.app_context():  # another worker's session
        db.session.execute(update(Account).values(name="Renamed"))
        db.session.commit()
    db.session.rollback()
    locked = database.lock_row(Account, tenant.account.id)
    try:
        assert locked is account and locked.name == "Renamed"  # as the other session left it
        other = sqlite3.connect(db.engine.url.database, isolation_level=None, timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    finally:
        db.session.rollback()
    assert database.lock_row(Account, 10**9) is None
    db.session.rollback()


def test_the_connection_rules_hold_for_the_apps_engines_only(app, tmp_path):
    """An engine made apart from the app gets SQLite's defaults, until it is given the rules."""
    pragma = "PRAGMA foreign_keys"
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql(pragma).scalar() == 1
    apart = create_engine(f"sqlite:///{tmp_path / 'apart.sqlite3'}")
    with apart.connect() as connection:
        assert connection.exec_driver_sql(pragma).scalar() == 0
    apart.dispose()
    assert database.configure_engine(apart) is apart
    database.configure_engine(apart)  # once is enough: no second listener
    with apart.connect() as connection:
        assert connection.exec_driver_sql(pragma).scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    apart.dispose()


def test_a_session_apart_from_the_app_queues_nothing(app, queue, tmp_path):
    """Tasks are queued by the app's sessions' commits; a commit elsewhere leaves them."""
    jobs.after_commit("mail.send_queued", 1)
    apart = create_engine(f"sqlite:///{tmp_path / 'apart.sqlite3'}")
    with Session(apart) as other:
        other.execute(text("SELECT 1"))
        other.commit()
    apart.dispose()
    assert queue.jobs == []
    db.session.commit()
    assert queue.names() == ["mail.send_queued"]
