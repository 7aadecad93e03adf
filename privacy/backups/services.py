"""Backups: consistent snapshot -> gzip -> AES-GCM frames -> streamed to the backup location
with a manifest beside it; retention (30 days kept, nothing older than 90); restore with
checksum check and erasure replay; recovery drills.

A backup counts only once its manifest exists: the manifest is written last, and a failed
run deletes whatever part of the backup it wrote.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from privacy import database
from privacy import files
from privacy import storage
from privacy.audit import services as audit
from privacy.audit.models import AuditEvent
from privacy.backups import stream
from privacy.backups.models import BackupRun
from privacy.backups.models import DrillReport
from privacy.database import utcnow
from privacy.dsr import ledger
from privacy.extensions import db
from privacy.inventory.models import Subject

PREFIX = "backups/"
KEEP_DAYS = 30
PURGE_DAYS = 90
LEDGER_KEEP_DAYS = 91  # the ledger outlives every backup it may have to correct
STAMP = "%Y%m%dT%H%M%SZ"

Progress = Callable[[int], None]


class BackupError(RuntimeError):
    """A backup, restore or drill cannot go on; the message says why, without data."""


@dataclass(frozen=True)
class Manifest:
    id: str
    created_at: datetime
    database: str
    size: int
    sha256: str
    key_id: str
    row_counts: dict[str, int]
    revision: str | None

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        data = json.loads(raw)
        return cls(
            id=data["id"],
            created_at=datetime.fromisoformat(data["created_at"]),
            database=data["database"],
            size=data["size"],
            sha256=data["sha256"],
            key_id=data["key_id"],
            row_counts=data["row_counts"],
            revision=data.get("revision"),
        )

    def dump(self) -> bytes:
        return json.dumps(
            {
                "id": self.id,
                "created_at": self.created_at.isoformat(),
                "database": self.database,
                "format": "privacy-backup/1 (gzip, AES-256-GCM frames, data key wrapped)",
                "size": self.size,
                "sha256": self.sha256,
                "key_id": self.key_id,
                "row_counts": self.row_counts,
                "revision": self.revision,
            },
            indent=2,
        ).encode()


# -- keys and places ---------------------------------------------------------------------


def key_ring() -> tuple[str, dict[str, bytes]]:
    """(current key id, {id: key}) from BACKUP_KEYS `id:base64,...` (the last is current)."""
    spec = current_app.config.get("BACKUP_KEYS") or ""
    keys: dict[str, bytes] = {}
    current = None
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key_id, _, material = part.partition(":")
        try:
            key = base64.b64decode(material, validate=True)
        except ValueError:
            key = b""
        if len(key) != 32 or not key_id.isalnum():
            raise BackupError("PRIVACY_BACKUP_KEYS entries look like 'b1:<base64 of 32 bytes>'.")
        keys[key_id] = key
        current = key_id
    if current is None:
        raise BackupError("No backup key is configured (PRIVACY_BACKUP_KEYS).")
    return current, keys


def location() -> storage.Storage:
    config = current_app.config
    return storage.from_url(
        config["BACKUP_URL"],
        endpoint_url=config.get("S3_ENDPOINT_URL"),
        region=config.get("S3_REGION"),
        sse=config.get("S3_SSE"),
        kms_key_id=config.get("S3_KMS_KEY_ID"),
    )


def _object(backup_id: str) -> str:
    return f"{PREFIX}{backup_id}.bak"


def _manifest_key(backup_id: str) -> str:
    return f"{PREFIX}{backup_id}.json"


# -- snapshots ---------------------------------------------------------------------------


def _kind(url) -> str:
    try:
        name = make_url(str(url)).get_backend_name()
    except ArgumentError:
        raise BackupError(
            "The target is not a database URL (postgresql://... or sqlite:///...)."
        ) from None
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {name}.")
    return name


def _libpq(url) -> str:
    """The SQLAlchemy URL as libpq understands it (for pg_dump and pg_restore)."""
    return make_url(str(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def _counts(connection) -> dict[str, int]:
    names = sorted(inspect(connection).get_table_names())
    return {
        name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()  # noqa: S608
        for name in names
    }


@contextlib.contextmanager
def _snapshot(url) -> Iterator[tuple[Iterator[bytes], dict[str, int], str | None]]:
    """(plaintext chunks of a consistent snapshot, row counts of that snapshot, revision)."""
    kind = _kind(url)
    if kind == "sqlite":
        path = make_url(str(url)).database
        folder = Path(tempfile.mkdtemp(prefix="privacy-backup-"))
        copy = folder / "snapshot.sqlite3"
        try:
            source = sqlite3.connect(path)
            target = sqlite3.connect(copy)
            with target:
                source.backup(target)  # SQLite's online backup: a consistent copy
            source.close()
            target.close()
            engine = create_engine(f"sqlite:///{copy}")
            with engine.connect() as connection:
                counts = _counts(connection)
                revision = _revision(connection)
            engine.dispose()
            with copy.open("rb") as fh:
                yield stream.file_chunks(fh), counts, revision
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    engine = create_engine(str(url))
    try:
        with engine.connect() as plain:
            # One snapshot for pg_dump and the row counts: what the manifest says is what the
            # dump holds. The isolation level is set before the transaction begins.
            connection = plain.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            counts = _counts(connection)
            revision = _revision(connection)
            command = [
                "pg_dump",
                "--format=custom",
                "--compress=0",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                f"--dbname={_libpq(url)}",
            ]
            process = subprocess.Popen(  # noqa: S603 - fixed argument list
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            try:
                yield _process_chunks(process), counts, revision
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    finally:
        engine.dispose()


def _process_chunks(process) -> Iterator[bytes]:
    yield from stream.file_chunks(process.stdout)
    code = process.wait()
    if code != 0:
        error = process.stderr.read().decode(errors="replace").strip().splitlines()
        raise BackupError(f"pg_dump failed ({code}): {error[-1] if error else 'no message'}")


def _revision(connection) -> str | None:
    try:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # noqa: BLE001 - a database without migrations has no revision
        return None


# -- backup ------------------------------------------------------------------------------


def _new_id(now: datetime) -> str:
    return f"{now.strftime(STAMP)}-{secrets.token_hex(3)}"


def run_backup(
    *, actor: str, trigger: str = "schedule", progress: Progress | None = None
) -> BackupRun:
    """Take a backup; the run is recorded as succeeded or failed (with the reason), and
    audited as `actor`'s."""
    started = utcnow()
    run = BackupRun(public_id=uuid.uuid4(), started_at=started, status="running", trigger=trigger)
    db.session.add(run)
    db.session.commit()
    backup_id = _new_id(started)
    store = None
    try:
        key_id, keys = key_ring()
        store = location()
        url = current_app.config["SQLALCHEMY_DATABASE_URI"]
        digest = hashlib.sha256()
        size = 0

        def seen(piece: bytes) -> None:
            nonlocal size
            digest.update(piece)
            size += len(piece)
            if progress:
                progress(size)

        with _snapshot(url) as (chunks, counts, revision):
            encrypted = stream.encrypt(chunks, key_id=key_id, wrapping_key=keys[key_id])
            store.put(_object(backup_id), stream.IterReader(encrypted, seen))
        manifest = Manifest(
            id=backup_id,
            created_at=started,
            database=_kind(url),
            size=size,
            sha256=digest.hexdigest(),
            key_id=key_id,
            row_counts=counts,
            revision=revision,
        )
        store.put(_manifest_key(backup_id), manifest.dump(), content_type="application/json")
    except Exception as exc:
        if store is not None:
            with contextlib.suppress(Exception):
                store.delete(_object(backup_id))
        db.session.rollback()
        run.status, run.reason, run.finished_at = "failed", _reason(exc), utcnow()
        audit.record(
            None,
            action="backup.failed",
            object_type="backup",
            object_id=run.public_id,
            data={"reason": run.reason[:200]},
            actor=actor,
        )
        db.session.commit()
        return run
    run.status, run.finished_at = "succeeded", utcnow()
    run.key, run.size, run.sha256, run.key_id = backup_id, size, manifest.sha256, key_id
    audit.record(
        None,
        action="backup.succeeded",
        object_type="backup",
        object_id=run.public_id,
        data={"backup": backup_id, "size": size},
        actor=actor,
    )
    db.session.commit()
    return run


def _reason(exc: Exception) -> str:
    if isinstance(exc, ledger.LedgerUnreadable):
        return f"The restore stopped: {exc}; without it, erased people could come back."
    if isinstance(exc, storage.StorageError) and not isinstance(exc, storage.ObjectNotFound):
        return f"The backup location is unreachable or refused the request ({exc})."
    if isinstance(exc, BackupError | storage.StorageError | stream.BackupCorrupt):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == 28:
        return "The disk is full."
    return f"{type(exc).__name__}: the backup could not be completed."


def manifests(store: storage.Storage | None = None) -> list[Manifest]:
    """Every complete backup in the location, oldest first."""
    store = store or location()
    found = []
    for key in store.list(PREFIX):
        if key.endswith(".json"):
            found.append(Manifest.parse(store.get(key)))
    return sorted(found, key=lambda m: m.created_at)


def find(backup_id: str, store: storage.Storage | None = None) -> Manifest:
    store = store or location()
    try:
        return Manifest.parse(store.get(_manifest_key(backup_id)))
    except storage.ObjectNotFound:
        raise BackupError(f"There is no backup with id {backup_id!r}.") from None
    except ValueError:
        raise BackupError(f"The backup id {backup_id!r} is not valid.") from None


# -- retention ---------------------------------------------------------------------------


@dataclass
class Retention:
    deleted: list[str]
    violations: list[str]


def enforce_retention(now: datetime | None = None, *, dry_run: bool = False) -> Retention:
    """Delete backups older than 30 days (never keeps one past 90), stray parts of failed
    uploads, and ledger entries older than any backup can be. `dry_run` only reports."""
    now = now or utcnow()
    store = location()
    deleted, violations = [], []
    complete = set()
    for manifest in manifests(store):
        complete.add(manifest.id)
        age = now - manifest.created_at
        if age > timedelta(days=PURGE_DAYS):
            violations.append(f"backup {manifest.id} is {age.days} days old (over {PURGE_DAYS})")
        if age > timedelta(days=KEEP_DAYS):
            if not dry_run:
                store.delete(_object(manifest.id))
                store.delete(_manifest_key(manifest.id))
            deleted.append(manifest.id)
            if age <= timedelta(days=PURGE_DAYS):
                violations.append(f"backup {manifest.id} is {age.days} days old (kept {KEEP_DAYS})")
    for key in store.list(PREFIX):
        backup_id = key[len(PREFIX) :].rsplit(".", 1)[0]
        if key.endswith(".bak") and backup_id not in complete:
            stamp = datetime.strptime(backup_id.split("-")[0], STAMP).replace(tzinfo=UTC)
            if now - stamp > timedelta(days=1):
                violations.append(f"{key} has no manifest (a failed upload)")
                if not dry_run:
                    store.delete(key)
    if not dry_run:
        ledger.purge(older_than=now - timedelta(days=LEDGER_KEEP_DAYS))
    return Retention(deleted=deleted, violations=violations)


def lifecycle_rules() -> dict:
    """S3 lifecycle rules for the backup bucket: a second line of defence behind the job."""
    url = current_app.config["BACKUP_URL"]
    prefix = url.split("://", 1)[1].partition("/")[2].strip("/") if url.startswith("s3://") else ""
    object_prefix = f"{prefix}/{PREFIX}" if prefix else PREFIX
    return {
        "Rules": [
            {
                "ID": "privacy-backups-hard-purge",
                "Filter": {"Prefix": object_prefix},
                "Status": "Enabled",
                "Expiration": {"Days": PURGE_DAYS},
                "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }
        ]
    }


# -- restore -----------------------------------------------------------------------------


def _fetch(
    store: storage.Storage, manifest: Manifest, folder: Path, progress: Progress | None
) -> Path:
    """Download the backup to a local file, checking size and SHA-256 on the way."""
    path = folder / "backup.bak"
    digest = hashlib.sha256()
    size = 0
    with store.open(_object(manifest.id)) as source, path.open("wb") as target:
        for chunk in stream.file_chunks(source):
            digest.update(chunk)
            target.write(chunk)
            size += len(chunk)
            if progress:
                progress(size)
    if size != manifest.size or digest.hexdigest() != manifest.sha256:
        raise BackupError(f"Backup {manifest.id} fails its checksum: it was altered or cut short.")
    return path


def _empty(url) -> bool:
    kind = _kind(url)
    if kind == "sqlite":
        path = make_url(str(url)).database
        if not path or not os.path.exists(path) or os.path.getsize(path) == 0:
            return True
    engine = create_engine(str(url))
    try:
        with engine.connect() as connection:
            return not inspect(connection).get_table_names()
    finally:
        engine.dispose()


def restore(
    backup_id: str,
    *,
    target: str,
    actor: str,
    force: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Restore a backup into `target` and replay the erasure ledger before reporting success.

    Every attempt is audited: `backup.restored`, or `backup.restore_failed` with the reason
    (then the error is raised again, as BackupError or BackupCorrupt).
    """
    try:
        try:
            store = location()
            manifest = find(backup_id, store)
            _restore_data(store, manifest, target, force=force, progress=progress)
            replayed = _replay(target, manifest.created_at)
        except (storage.StorageError, ledger.LedgerUnreadable) as exc:
            raise BackupError(_reason(exc)) from exc
    except Exception as exc:
        db.session.rollback()
        audit.record(
            None,
            action="backup.restore_failed",
            object_type="backup",
            object_id=backup_id[:64],
            data={"target": _where(target), "reason": _reason(exc)[:200]},
            actor=actor,
        )
        db.session.commit()
        raise
    audit.record(
        None,
        action="backup.restored",
        object_type="backup",
        object_id=manifest.id,
        data={"database": manifest.database, "target": _where(target), "replayed": replayed},
        actor=actor,
    )
    db.session.commit()
    return {"backup": manifest.id, "replayed_erasures": replayed, "row_counts": manifest.row_counts}


def _where(url) -> str:
    """A database URL for the audit log: kind, host and name; never the user or password."""
    try:
        parsed = make_url(str(url))
    except Exception:  # noqa: BLE001 - an unparsable target is recorded as such
        return "unparsable URL"
    host = f"{parsed.host}:{parsed.port or ''}".rstrip(":") if parsed.host else ""
    return f"{parsed.get_backend_name()}://{host}/{parsed.database or ''}"


def _restore_data(store, manifest: Manifest, target: str, *, force: bool, progress) -> None:
    kind = _kind(target)
    if kind != manifest.database:
        raise BackupError(
            f"Backup {manifest.id} is a {manifest.database} backup; the target is {kind}."
        )
    if not force and not _empty(target):
        raise BackupError("The target database is not empty; use --force to replace it.")
    _current, keys = key_ring()
    if manifest.key_id not in keys:
        raise BackupError(
            f"Backup {manifest.id} was made with backup key {manifest.key_id!r}, which is not "
            "in PRIVACY_BACKUP_KEYS: add it from the copy of the keys kept apart from the "
            "instance folder."
        )
    # The ledger must be readable before anything is restored: a restore that cannot replay
    # the erasures must not leave erased people in a database that looks restored.
    list(ledger.entries(manifest.created_at))
    folder = Path(tempfile.mkdtemp(prefix="privacy-restore-"))
    try:
        path = _fetch(store, manifest, folder, progress)
        with path.open("rb") as source:
            _load(stream.decrypt(source, keys), target, kind, force, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _load(plain: Iterator[bytes], target: str, kind: str, force: bool, folder: Path) -> None:
    if kind == "sqlite":
        path = Path(make_url(target).database)
        files.private_dirs(path.parent)
        partial = folder / "restored.sqlite3"
        with files.open_private(partial) as out:
            for chunk in plain:
                out.write(chunk)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.move(partial, path)
        return
    command = [
        "pg_restore",
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        f"--dbname={_libpq(target)}",
    ]
    if force:
        command[1:1] = ["--clean", "--if-exists"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: S603
    try:
        for chunk in plain:
            process.stdin.write(chunk)
        process.stdin.close()
    except BrokenPipeError:
        pass
    except BaseException:
        process.kill()
        process.wait()
        raise
    code = process.wait()
    if code != 0:
        error = process.stderr.read().decode(errors="replace").strip().splitlines()
        raise BackupError(f"pg_restore failed ({code}): {error[-1] if error else 'no message'}")


def _replay(target: str, since: datetime) -> int:
    # The service's connection rules: on SQLite, foreign keys on, so that the replay's
    # deletes cascade to the erased subjects' rows as they do in the service.
    engine = database.configure_engine(create_engine(target))
    try:
        with Session(engine) as session:
            return ledger.replay_erasures(since, session=session)
    finally:
        engine.dispose()


# -- drills ------------------------------------------------------------------------------


def drill(*, actor: str, progress: Progress | None = None) -> DrillReport:
    """Restore the newest backup into a scratch database, compare its row counts with the
    manifest, replay erasures, check no erased subject is present, drop the scratch database,
    and record the report (audited as `actor`'s)."""
    started = utcnow()
    clock = time.monotonic()
    checks: list[dict] = []
    backup_id = None
    try:
        store = location()
        found = manifests(store)
        if not found:
            raise BackupError("There is no backup to drill with.")
        manifest = found[-1]
        backup_id = manifest.id
        with _scratch(manifest.database) as scratch:
            _restore_data(store, manifest, scratch, force=False, progress=progress)
            checks.append({"check": "checksum and decryption", "ok": True})
            engine = create_engine(scratch)
            try:
                with engine.connect() as connection:
                    counts = _counts(connection)
                for table, expected in sorted(manifest.row_counts.items()):
                    actual = counts.get(table)
                    checks.append(
                        {
                            "check": f"rows in {table}",
                            "expected": expected,
                            "actual": actual,
                            "ok": actual == expected,
                        }
                    )
                replayed = _replay(scratch, manifest.created_at)
                checks.append({"check": "erasures replayed", "count": replayed, "ok": True})
                with Session(engine) as session:
                    left = sum(
                        session.scalar(
                            select(func.count()).select_from(Subject).where(ledger.named(entry))
                        )
                        or 0
                        for entry in ledger.entries()
                    )
                checks.append(
                    {"check": "no erased subject present", "found": left, "ok": left == 0}
                )
            finally:
                engine.dispose()
        status = "passed" if all(c["ok"] for c in checks) else "failed"
    except Exception as exc:  # a drill reports; it does not crash the worker
        status = "failed"
        checks.append({"check": "drill ran to the end", "ok": False, "reason": _reason(exc)})
    report = DrillReport(
        public_id=uuid.uuid4(),
        started_at=started,
        finished_at=utcnow(),
        status=status,
        backup_id=backup_id,
        duration_seconds=round(time.monotonic() - clock, 3),
        checks=checks,
    )
    db.session.add(report)
    audit.record(
        None,
        action=f"backup.drill_{status}",
        object_type="backup_drill",
        object_id=report.public_id,
        actor=actor,
    )
    db.session.commit()
    return report


@contextlib.contextmanager
def _scratch(kind: str) -> Iterator[str]:
    """An empty scratch database of `kind`, dropped afterwards."""
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="privacy-drill-"))
        try:
            yield f"sqlite:///{folder / 'drill.sqlite3'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    base = make_url(str(current_app.config["SQLALCHEMY_DATABASE_URI"]))
    name = f"privacy_drill_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def latest_runs(limit: int = 30) -> list[BackupRun]:
    return list(
        db.session.scalars(select(BackupRun).order_by(BackupRun.started_at.desc()).limit(limit))
    )


def latest_drills(limit: int = 12) -> list[DrillReport]:
    return list(
        db.session.scalars(select(DrillReport).order_by(DrillReport.started_at.desc()).limit(limit))
    )


def latest_restores(limit: int = 20) -> list:
    """Restores (done or refused) as the platform's audit chain records them, newest first."""
    query = (
        select(AuditEvent)
        .where(
            AuditEvent.account_ref.is_(None),
            AuditEvent.action.in_(("backup.restored", "backup.restore_failed")),
        )
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))
