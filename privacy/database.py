"""Model building blocks (UTC timestamps, public ids, tenant scoping, encrypted fields and
their keyed indexes, bulk inserts), and, in one section at the end, the rules of concurrent
access: SQLite's connection settings and write lock, row locks, and a busy database."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from datetime import UTC
from datetime import datetime
from typing import TypeVar

import click
from flask import Flask
from flask import current_app
from flask import has_request_context
from flask import request
from flask.cli import ScriptInfo
from sqlalchemy import DateTime
from sqlalchemy import ForeignKey
from sqlalchemy import LargeBinary
from sqlalchemy import Select
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Uuid
from sqlalchemy import event
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import declared_attr
from sqlalchemy.orm import mapped_column
from sqlalchemy.types import TypeDecorator

from privacy import logs
from privacy.errors import NotFound
from privacy.errors import ServiceUnavailable
from privacy.errors import handle_http_exception
from privacy.extensions import db
from privacy.paths import ROOT
from privacy.validation import email_key

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps on every backend (SQLite returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime; use timezone-aware UTC values")
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class PublicIdMixin:
    """Internal integer keys never leave the service; the API speaks public UUIDs."""

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, unique=True, nullable=False, default=uuid.uuid4
    )


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class AccountScopedMixin:
    """Every tenant table carries a non-null, indexed account_id."""

    @declared_attr
    def account_id(cls) -> Mapped[int]:  # noqa: N805
        return mapped_column(
            ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
        )


class EncryptedContactMixin:
    """Name and e-mail encrypted with AES-GCM, plus a keyed blind index for exact e-mail lookup.

    The additional data binds each ciphertext to its table, row and field, so a ciphertext
    copied into another row or column does not decrypt.
    """

    name_ct: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    email_ct: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    key_id: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    email_index: Mapped[str] = mapped_column(String(64), nullable=False)

    def set_contact(self, *, name: str, email: str, index_scope: str) -> None:
        """Encrypt name and (already normalized) e-mail under the current key."""
        if self.public_id is None:
            self.public_id = uuid.uuid4()
        for column, value in contact_columns(
            self.__tablename__, self.public_id, name=name, email=email, index_scope=index_scope
        ).items():
            setattr(self, column, value)
        self.__dict__.pop("_contact_cache", None)

    def reencrypt(self) -> None:
        """Re-encrypt under the current key (rotation); the blind index does not change."""
        name, email = self._contact()
        self.name_ct, self.email_ct, self.key_id = encrypt_contact(
            self.__tablename__, self.public_id, name, email
        )

    def _contact(self) -> tuple[str, str]:
        cached = self.__dict__.get("_contact_cache")
        if cached is None:
            ring = current_app.extensions["keyring"]
            cached = (
                ring.decrypt(
                    self.name_ct, self.key_id, _aad(self.__tablename__, self.public_id, "name")
                ),
                ring.decrypt(
                    self.email_ct, self.key_id, _aad(self.__tablename__, self.public_id, "email")
                ),
            )
            self.__dict__["_contact_cache"] = cached
        return cached

    @property
    def name(self) -> str:
        return self._contact()[0]

    @property
    def email(self) -> str:
        return self._contact()[1]


def _aad(table: str, public_id: uuid.UUID, field: str) -> bytes:
    return f"{table}:{public_id}:{field}".encode()


def email_index(index_scope: str, normalized_email: str) -> str:
    """Keyed blind index of a normalized e-mail within `index_scope` (an account, or members);
    case-insensitive (validation.email_key), so any spelling of the address finds it."""
    return current_app.extensions["blind_index"](index_scope, email_key(normalized_email))


def ref_index(index_scope: str, ref: str) -> str:
    """Keyed blind index of a controller's customer id (a subject's external_ref, a request's
    controller_customer_id) within `index_scope` (an account); exact, as the controller
    spells it. Prefixed, so that it never equals the index of an e-mail."""
    return current_app.extensions["blind_index"](index_scope, "external_ref:" + ref)


def encrypt_field(table: str, public_id: uuid.UUID, field: str, value: str) -> bytes:
    """`value` under the current data key, bound to its table, row and field; the row
    records the key id (`key_id`) beside it."""
    return current_app.extensions["keyring"].encrypt(value, _aad(table, public_id, field))


def decrypt_field(table: str, public_id: uuid.UUID, field: str, blob: bytes, key_id: str) -> str:
    return current_app.extensions["keyring"].decrypt(blob, key_id, _aad(table, public_id, field))


def contact_columns(
    table: str, public_id: uuid.UUID, *, name: str, email: str, index_scope: str
) -> dict:
    """Column values of an encrypted contact; also used by bulk inserts that skip the ORM."""
    name_ct, email_ct, key_id = encrypt_contact(table, public_id, name, email)
    return {
        "name_ct": name_ct,
        "email_ct": email_ct,
        "key_id": key_id,
        "email_index": email_index(index_scope, email),
    }


def encrypt_contact(
    table: str, public_id: uuid.UUID, name: str, email: str
) -> tuple[bytes, bytes, str]:
    ring = current_app.extensions["keyring"]
    return (
        ring.encrypt(name, _aad(table, public_id, "name")),
        ring.encrypt(email, _aad(table, public_id, "email")),
        ring.current_id,
    )


def bulk_insert(table: Table, rows: list[dict], *, return_ids: bool = False) -> list[int]:
    """Insert many rows in the session's transaction as fast as the database allows.

    PostgreSQL gets COPY (several times faster than multi-row INSERTs), with ids drawn from
    the table's sequence first when `return_ids`; other databases get executemany, or
    INSERT ... RETURNING. Column defaults are not applied: `rows` must carry every value.
    Returns the new ids in the order of `rows` when `return_ids`, else [].
    A unique or foreign-key violation is SQLAlchemy's IntegrityError on every database.
    """
    if not rows:
        return []
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        if not return_ids:
            connection.execute(table.insert(), rows)
            return []
        statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return list(connection.execute(statement, rows).scalars())
    ids: list[int] = []
    if return_ids:
        ids = list(
            connection.execute(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                    "FROM generate_series(1, :count)"
                ),
                {"table": table.name, "count": len(rows)},
            ).scalars()
        )
        rows = [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)]
    columns = list(rows[0])
    names = ", ".join(f'"{name}"' for name in columns)
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[name] for name in columns])
    except connection.dialect.dbapi.IntegrityError as exc:
        # COPY runs on the driver's cursor, past SQLAlchemy's translation of errors.
        raise IntegrityError(statement, None, exc) from None
    return ids


M = TypeVar("M")


def for_account(model: type[M], account, *columns) -> Select:
    """The one way to query tenant rows: a select (of `columns`, or whole rows) of `account`'s."""
    return select(*(columns or (model,))).select_from(model).where(model.account_id == account.id)


def get_for_account(model: type[M], public_id: uuid.UUID, account) -> M:
    """Fetch one tenant row by public id; raises NotFound for a missing or foreign id."""
    row = db.session.scalar(for_account(model, account).where(model.public_id == public_id))
    if row is None:
        raise NotFound(f"{getattr(model, '__label__', model.__name__)} not found.")
    return row


# -- migrations: Flask-Migrate (Alembic), bound when first needed -------------------------


def init_migrations(app: Flask) -> None:
    """Bind Flask-Migrate (Alembic) to `app`: migrations/ as the script folder, batch mode
    (SQLite alters a table by copying it). Idempotent.

    Not done at start-up: Flask-Migrate imports Alembic, Mako and Pygments, about a sixth of
    a second that a web worker, a Celery child and every other command would pay for
    nothing. The `flask db` commands (MigrationCommands) and code that migrates a database
    itself (the tests' schema) call this first.
    """
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate  # the light start: see the docstring

    Migrate(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)


class MigrationCommands(click.Group):
    """`flask db ...`: Flask-Migrate's command group, imported when it is run. `flask --help`
    lists this stand-in (its name and help) without importing Flask-Migrate; running it
    hands the command line to the real group, options and subcommands included."""

    def __init__(self) -> None:
        super().__init__("db", help="Database migrations (Flask-Migrate): upgrade, current, ...")

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        if parent is not None:
            init_migrations(parent.ensure_object(ScriptInfo).load_app())
        from flask_migrate.cli import db as commands  # the light start: see init_migrations

        return commands.make_context(info_name, args, parent=parent, **extra)


# -- concurrency: SQLite's settings and write lock, row locks, a busy database -------------
#
# SQLite (the embedded default) runs in WAL mode: readers never wait, one writer at a time.
# A deferred transaction that has read cannot start writing once another connection has
# committed since its first read: it fails at once with "database is locked", whatever the
# busy timeout. So a transaction that will write takes the write lock as it begins (BEGIN
# IMMEDIATE) and waits its turn for it: every request but GET, HEAD and OPTIONS, a GET view
# marked with `writes`, and CLI commands and tasks after `begin_write()`; a task that works on
# one row takes `lock_row` first. PostgreSQL needs none of that but row locks (`lock_row`).
# A lock not had in time (`is_busy`) is answered 503 with Retry-After (`answer_busy`), and a
# task meeting one runs again (privacy.jobs).

# The execution option, read as a transaction begins, that makes it BEGIN IMMEDIATE on SQLite.
WRITE_LOCK = "privacy_write_lock"
# Requests with these methods only read, unless their view is marked with `writes`.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# How long a connection waits for SQLite's write lock before the statement fails (ms).
SQLITE_BUSY_TIMEOUT_MS = 10000
# What a client that met a busy database is told to wait before it tries again (seconds).
BUSY_RETRY_AFTER = 2
# SQLite's primary result codes for a lock it could not get: SQLITE_BUSY, SQLITE_LOCKED.
_SQLITE_BUSY_CODES = frozenset({5, 6})
# PostgreSQL: lock_not_available (a lock_timeout ran out), deadlock_detected.
_POSTGRESQL_BUSY_STATES = frozenset({"55P03", "40P01"})


def init_app(app: Flask) -> None:
    """Apply the rules below to the app's engines, those Flask-SQLAlchemy made for `app`
    (call it after `db.init_app(app)`, before any connection is opened). The app registers
    `answer_busy` as its handler of OperationalError."""
    with app.app_context():
        for engine in db.engines.values():
            configure_engine(engine)


def configure_engine(engine: Engine) -> Engine:
    """Give `engine` the service's connection rules (on SQLite: foreign keys, WAL, the busy
    timeout, BEGIN IMMEDIATE for writers); return it. The app's engines get them from
    `init_app`; an engine made apart from the app (a restore's target) is passed here."""
    if not event.contains(engine, "connect", _sqlite_pragmas):
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: enforce foreign keys, WAL for concurrent readers, wait instead of failing on locks.

    isolation_level=None plus an explicit BEGIN (below) lets SQLAlchemy manage transactions
    and SAVEPOINTs, which the driver's own transaction handling breaks.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL is crash-safe for the application; only an OS crash or power loss
        # may drop the last commits. The embedded default trades that for fewer fsyncs.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # Deleted rows are overwritten, not left in free pages of the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()


def _sqlite_begin(conn):
    """SQLite: requests that change data begin holding the write lock (BEGIN IMMEDIATE).

    An immediate transaction waits on the busy timeout for the lock, where a deferred one
    that has read would fail at its first write. GET requests (which call `begin_write` before
    they write, or are marked with `writes`), the worker (whose write transactions start with
    a write) and the CLI keep a deferred BEGIN, so their reads never queue behind writers.
    """
    if conn.dialect.name != "sqlite":
        return
    if conn.get_execution_options().get(WRITE_LOCK) or view_writes():
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def begin_write() -> None:
    """Commit the session's transaction and begin one that holds the write lock.

    SQLite in WAL mode cannot turn a transaction that has read into a writing one once another
    connection has committed since its first read: the write fails at once with "database is
    locked", whatever the busy timeout. Requests that change data take the lock as their
    transactions begin (`_sqlite_begin`); CLI commands and tasks that read then write call
    this first, and wait their turn for the lock. Whatever the session holds is committed.
    PostgreSQL has no such limit: there only the commit happens.
    """
    db.session.commit()
    db.session.connection(execution_options={WRITE_LOCK: True})


def writes(view):
    """Mark a GET view that writes: its request's transactions begin holding SQLite's write
    lock (BEGIN IMMEDIATE), as those of POST, PUT, PATCH and DELETE requests do. Without it a
    GET's transaction that has read may fail at its first write (see `begin_write`)."""
    view.writes = True
    return view


def view_writes() -> bool:
    """Whether the current request changes data: any method but GET, HEAD and OPTIONS, or a
    view marked with `writes`."""
    if not has_request_context():
        return False
    if request.method not in READ_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return bool(getattr(view, "writes", False))


def lock_row(model: type[M], row_id: int) -> M | None:
    """Lock the row of `model` with primary key `row_id` until the transaction ends; return it
    as it is now (None if gone), reloaded over what the session held.

    Call it as the transaction's first statement. PostgreSQL: SELECT ... FOR UPDATE, so a
    second worker on the same row waits for the first and then sees its result. SQLite has
    no row locks: a write that changes nothing takes the database's write lock first (a
    transaction that read could no longer start writing once another connection committed),
    waiting for it up to the busy timeout.
    """
    if db.session.get_bind().dialect.name == "sqlite":
        table = model.__table__
        key = next(iter(table.primary_key.columns))
        db.session.execute(update(table).where(false()).values({key.name: key}))
    return db.session.get(model, row_id, with_for_update=True, populate_existing=True)


def is_busy(error: BaseException) -> bool:
    """Whether a database error means "busy, try again": SQLite's write lock stayed taken
    past the busy timeout (or a read transaction could no longer write), or PostgreSQL gave
    up waiting for a lock or broke a deadlock. The transaction is lost; the work is not wrong.
    The one test behind the 503 of a request (`answer_busy`) and the rerun of a task
    (privacy.jobs).
    """
    original = getattr(error, "orig", error)
    code = getattr(original, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SQLITE_BUSY_CODES
    if getattr(original, "sqlstate", None) in _POSTGRESQL_BUSY_STATES:
        return True
    message = str(original)
    return "database is locked" in message or "database table is locked" in message


def answer_busy(error: OperationalError):
    """Flask's handler of OperationalError: a request that met a busy database answers 503
    with Retry-After, in the one error shape, after its transaction is rolled back (nothing
    it began stays). Any other OperationalError is re-raised: a 500, as before.

    A request waits for SQLite's write lock up to the busy timeout, a bound that long writes
    respect by committing in short transactions (the bulk import).
    """
    if not is_busy(error):
        raise error
    db.session.rollback()
    logger.warning("database busy; answered 503 request_id=%s", logs.request_id())
    return handle_http_exception(
        ServiceUnavailable(
            "The database is busy; retry shortly.",
            headers={"Retry-After": str(BUSY_RETRY_AFTER)},
        )
    )
