"""Inventory rules: subjects with encrypted contact fields, systems, holdings, import and export.

A bulk import is all or nothing for its caller, and on SQLite it never holds the database's
one write lock for long, so that other tenants' writes go on while it runs:

1. Read and check the whole upload (parsing, validation, the e-mails already present) in
   short read transactions; no lock is held while the rows are parsed and checked.
2. Encrypt and write the rows a chunk (IMPORT_CHUNK) at a time, each chunk in a transaction
   of its own that holds the lock for a moment. On SQLite the chunks go to staging tables
   (`staged_subjects`, `staged_holdings`) that no query of the account's data reads, keyed
   by the import's id: the partial state of an import is never the account's data.
3. Publish: one short transaction moves the staged rows into subjects and holdings with two
   INSERT ... SELECT statements, and records the audit row. Either it commits, and the
   whole upload is there, or it fails (an e-mail added meanwhile: 409) and nothing is.
4. The staged rows are deleted, a chunk per transaction, whatever happened; rows left by a
   process that died midway are purged by `purge_staged` (hourly, and before each import).

An upload of one chunk, and every import on PostgreSQL (whose writers take row locks, not
one lock for the database), skips staging: its rows go into subjects directly, in the one
transaction that also records the audit row, as before.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from privacy.accounts.models import Account
from privacy.audit import services as audit
from privacy.database import begin_write
from privacy.database import bulk_insert
from privacy.database import email_index
from privacy.database import encrypt_contact
from privacy.database import encrypt_field
from privacy.database import for_account
from privacy.database import ref_index
from privacy.database import utcnow
from privacy.errors import Conflict
from privacy.errors import NotFound
from privacy.errors import PayloadTooLarge
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.inventory.models import Holding
from privacy.inventory.models import StagedHolding
from privacy.inventory.models import StagedSubject
from privacy.inventory.models import Subject
from privacy.inventory.models import System
from privacy.validation import MAX_EXTERNAL_REF
from privacy.validation import MAX_SOURCE
from privacy.validation import MAX_SYSTEMS
from privacy.validation import clean_name
from privacy.validation import email_key
from privacy.validation import normalize_email

logger = logging.getLogger(__name__)

DUPLICATE_EMAIL = "A subject with this e-mail already exists in the account."
MAX_REPORTED_ROW_ERRORS = 1000
# Rows per write transaction of an import: on SQLite each holds the write lock for a few
# tens of milliseconds, so another tenant's write waits no longer than that.
IMPORT_CHUNK = 2000
IMPORT_FIELDS = frozenset({"name", "email", "external_ref", "source", "systems"})
# Staged rows older than this belong to an import whose process died (gunicorn ends a
# request after 120 s): `purge_staged` deletes them.
STAGED_MAX_AGE = timedelta(hours=1)
# SQLite's page cache while an import is published (negative: KiB, SQLite's convention):
# the index updates of 100,000 rows then stay in memory, which shortens the publication's
# hold of the lock by about a third. Set back before the commit.
PUBLISH_CACHE_KIB = -65536


def _scope(account: Account) -> str:
    return str(account.public_id)


def email_hash(email: str) -> str:
    """SHA-256 (hex) of an e-mail, lower-cased: the form OpenDSR `sha256` identities take."""
    return hashlib.sha256(email_key(email).encode()).hexdigest()


def hash_index(account: Account, sha256_hex: str) -> str:
    """The keyed index of an e-mail's SHA-256 in this account (subjects, erasure ledger)."""
    return _hash_index(_scope(account), sha256_hex)


def _hash_index(scope: str, sha256_hex: str) -> str:
    return email_index(scope, "sha256:" + sha256_hex.lower())


def customer_index(account: Account, customer_id: str) -> str:
    """The keyed index of a controller's customer id in this account: a subject's
    `external_ref`, a request's `controller_customer_id` (the erasure ledger keeps it too)."""
    return ref_index(_scope(account), customer_id)


def _email_taken(account: Account, email: str, *, exclude_id: int | None = None) -> bool:
    query = for_account(Subject, account).where(
        Subject.email_index == email_index(_scope(account), email)
    )
    if exclude_id is not None:
        query = query.where(Subject.id != exclude_id)
    return db.session.scalar(query.limit(1)) is not None


def _systems(account: Account, system_ids: Iterable[uuid.UUID]) -> list[System]:
    """The account's systems with these public ids; 422 naming any unknown (or foreign) id."""
    wanted = set(system_ids)
    if not wanted:
        return []
    found = list(
        db.session.scalars(for_account(System, account).where(System.public_id.in_(wanted)))
    )
    missing = wanted - {s.public_id for s in found}
    if missing:
        raise ValidationFailed(
            errors={
                "json": {
                    "systems": [
                        f"Unknown system {system_id}." for system_id in sorted(map(str, missing))
                    ]
                }
            }
        )
    return found


def _set_holdings(account: Account, subject: Subject, systems: list[System]) -> None:
    db.session.execute(delete(Holding).where(Holding.subject_id == subject.id))
    if systems:
        db.session.execute(
            insert(Holding),
            [
                {"account_id": account.id, "subject_id": subject.id, "system_id": s.id}
                for s in systems
            ],
        )
    db.session.expire(subject, ["systems"])


def _flush_unique(message: str) -> None:
    """Flush, turning a unique-constraint race into 409 instead of a 500."""
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(message) from None


def create_subject(
    account: Account,
    *,
    name: str,
    email: str,
    external_ref: str | None = None,
    source: str | None = None,
    systems: Iterable[uuid.UUID] = (),
    actor: str,
) -> Subject:
    """Add a subject; 409 if the e-mail is already in this account, 422 for unknown systems."""
    held_by = _systems(account, systems)
    if _email_taken(account, email):
        raise Conflict(DUPLICATE_EMAIL)
    subject = Subject(account_id=account.id, source=source)
    subject.set_contact(name=name, email=email, index_scope=_scope(account))
    subject.set_external_ref(external_ref, index_scope=_scope(account))
    subject.email_hash_index = hash_index(account, email_hash(email))
    db.session.add(subject)
    _flush_unique(DUPLICATE_EMAIL)
    _set_holdings(account, subject, held_by)
    audit.record(
        account,
        action="subject.created",
        object_type="subject",
        object_id=subject.public_id,
        data={"systems": len(held_by)},
        actor=actor,
    )
    return subject


def update_subject(account: Account, subject: Subject, *, changes: dict, actor: str) -> Subject:
    """Apply a partial update; re-encrypts on a name or e-mail change."""
    held_by = _systems(account, changes["systems"]) if "systems" in changes else None
    if "name" in changes or "email" in changes:
        email = changes.get("email", subject.email)
        if "email" in changes and _email_taken(account, email, exclude_id=subject.id):
            raise Conflict(DUPLICATE_EMAIL)
        subject.set_contact(
            name=changes.get("name", subject.name), email=email, index_scope=_scope(account)
        )
        subject.email_hash_index = hash_index(account, email_hash(email))
    if "external_ref" in changes:
        subject.set_external_ref(changes["external_ref"], index_scope=_scope(account))
    if "source" in changes:
        subject.source = changes["source"]
    subject.updated_at = utcnow()
    _flush_unique(DUPLICATE_EMAIL)
    if held_by is not None:
        _set_holdings(account, subject, held_by)
    audit.record(
        account,
        action="subject.updated",
        object_type="subject",
        object_id=subject.public_id,
        data={"fields": sorted(changes)},
        actor=actor,
    )
    return subject


def delete_subject(account: Account, subject: Subject, *, actor: str) -> None:
    """Ordinary deletion (not an Art. 17 erasure: that is the data-subject request's job)."""
    audit.record(
        account,
        action="subject.deleted",
        object_type="subject",
        object_id=subject.public_id,
        actor=actor,
    )
    db.session.delete(subject)


def find_by_email(account: Account, email: str) -> Subject:
    """Exact lookup through the blind index; 404 when the account holds no such e-mail."""
    subject = db.session.scalar(
        for_account(Subject, account).where(
            Subject.email_index == email_index(_scope(account), email)
        )
    )
    if subject is None:
        raise NotFound("No subject with this e-mail.")
    return subject


def list_subjects(
    account: Account,
    *,
    after_id: int | None,
    limit: int,
    system: uuid.UUID | None = None,
    external_ref: str | None = None,
) -> list[Subject]:
    """Up to limit+1 subjects in id order after `after_id` (the extra one signals a next page)."""
    query = for_account(Subject, account)
    if after_id is not None:
        query = query.where(Subject.id > after_id)
    if system is not None:
        (held_by,) = _systems(account, [system])
        query = query.join(Holding, Holding.subject_id == Subject.id).where(
            Holding.system_id == held_by.id
        )
    if external_ref is not None:
        query = query.where(Subject.external_ref_index == customer_index(account, external_ref))
    return list(db.session.scalars(query.order_by(Subject.id).limit(limit + 1)))


def iter_subjects(account: Account) -> Iterator[Subject]:
    """Every subject of the account, streamed in batches (for export)."""
    query = for_account(Subject, account).order_by(Subject.id).execution_options(yield_per=1000)
    yield from db.session.scalars(query)


def record_export(account: Account, *, format: str, count: int, complete: bool, actor: str) -> None:
    """Audit an export as it was sent: how many subjects, and whether the stream ended
    (a client that went away, or an error, leaves `complete` false)."""
    audit.record(
        account,
        action="subjects.exported",
        object_type="account",
        object_id=account.public_id,
        data={"format": format, "count": count, "complete": complete},
        actor=actor,
    )


# Erasure (Art. 17) ---------------------------------------------------------------------------
# A data-subject request's erasure (privacy.dsr.erasure) decides whom to erase, and audits
# each erasure in the request's name; the inventory deletes its own rows.


def held_by(subjects: list[Subject]) -> dict:
    """Subject id -> the public ids of the systems holding it now; gone subjects are absent.
    One query, whatever the number of subjects."""
    if not subjects:
        return {}
    subjects_, holdings, systems = Subject.__table__, Holding.__table__, System.__table__
    rows = db.session.execute(
        select(subjects_.c.id, systems.c.public_id)
        .select_from(
            subjects_.outerjoin(holdings, holdings.c.subject_id == subjects_.c.id).outerjoin(
                systems, systems.c.id == holdings.c.system_id
            )
        )
        .where(subjects_.c.id.in_({s.id for s in subjects}))
    ).all()
    held: dict = {}
    for row in rows:
        systems_now = held.setdefault(row.id, set())
        if row.public_id is not None:
            systems_now.add(row.public_id)
    return held


def erase_subjects(subjects: list[Subject]) -> None:
    """Delete these subjects in the caller's transaction, at its next flush: with each row
    its encrypted name, e-mail and customer id and their indexes, and its holdings (ON
    DELETE CASCADE). Not audited here: the erasure audits each in its request's name."""
    for subject in subjects:
        db.session.delete(subject)


def erase_matching(account: Account, condition, *, session=None) -> int:
    """Delete the account's subjects that match `condition` (a condition on Subject), in
    the app's database or in the one `session` is bound to (a restore's target), with one
    statement; their holdings go with them (ON DELETE CASCADE). Returns how many."""
    session = session or db.session
    ids = for_account(Subject, account, Subject.id).where(condition)
    result = session.execute(delete(Subject).where(Subject.id.in_(ids)))
    return result.rowcount or 0


# Systems -----------------------------------------------------------------------------------


def create_system(account: Account, *, actor: str, **data) -> System:
    system = System(account_id=account.id, **data)
    db.session.add(system)
    _flush_unique("A system with this name already exists in the account.")
    audit.record(
        account,
        action="system.created",
        object_type="system",
        object_id=system.public_id,
        actor=actor,
    )
    return system


def update_system(account: Account, system: System, *, changes: dict, actor: str) -> System:
    for key, value in changes.items():
        setattr(system, key, value)
    system.updated_at = utcnow()
    _flush_unique("A system with this name already exists in the account.")
    audit.record(
        account,
        action="system.updated",
        object_type="system",
        object_id=system.public_id,
        data={"fields": sorted(changes)},
        actor=actor,
    )
    return system


def delete_system(account: Account, system: System, *, actor: str) -> None:
    audit.record(
        account,
        action="system.deleted",
        object_type="system",
        object_id=system.public_id,
        actor=actor,
    )
    db.session.delete(system)


def list_systems(account: Account, *, after_id: int | None, limit: int) -> list[System]:
    query = for_account(System, account)
    if after_id is not None:
        query = query.where(System.id > after_id)
    return list(db.session.scalars(query.order_by(System.id).limit(limit + 1)))


# Bulk import -------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """Per-row problems of a rejected import; `conflicts_only` picks 409 over 422."""

    rows: list[dict] = field(default_factory=list)
    truncated: bool = False
    conflicts_only: bool = True

    def add(self, line: int, errors: dict, *, conflict: bool = False) -> None:
        self.conflicts_only = self.conflicts_only and conflict
        if len(self.rows) < MAX_REPORTED_ROW_ERRORS:
            self.rows.append({"line": line, "errors": errors})
        else:
            self.truncated = True


def import_subjects(
    account: Account,
    rows: Iterable[tuple[int, dict | str]],
    *,
    max_rows: int,
    actor: str,
    chunk_size: int | None = None,
) -> tuple[uuid.UUID, int]:
    """Validate every row, then insert all of them or none (see the module's docstring).

    `rows` yields (line number, parsed dict) or (line number, parse error message).
    Raises 422 (or 409 when the only problems are e-mails already present or repeated)
    with a per-row report; 413 beyond `max_rows`; 409 when an e-mail was added by someone
    else before the rows were published. Returns (import id, rows imported).

    Unlike other services this one commits, several times: the caller's transaction first
    (no transaction stays open while the upload is read), then each chunk, then the
    publication with its audit row. Nothing of the import is visible before that last one.
    """
    chunk_size = chunk_size or IMPORT_CHUNK
    account_id, scope = account.id, _scope(account)  # the account expires at each commit
    systems: dict[str, int] = {}
    systems_by_id: dict[str, int] = {}
    for system_id, name, public_id in db.session.execute(
        for_account(System, account, System.id, System.name, System.public_id)
    ):
        systems[name] = system_id
        systems_by_id[str(public_id)] = system_id
    db.session.commit()
    report = ImportReport()
    seen: dict[str, int] = {}
    valid: list[tuple[int, dict, str, list[int]]] = []

    for count, (line, row) in enumerate(rows, start=1):
        if count > max_rows:
            raise PayloadTooLarge(f"An import holds at most {max_rows} rows.")
        if isinstance(row, str):
            report.add(line, {"_row": [row]})
            continue
        data, errors = validate_import_row(row)
        if errors:
            report.add(line, errors)
            continue
        held_by = []
        for ref in data.pop("systems"):
            system_id = systems.get(ref) or systems_by_id.get(ref)
            if system_id is None:
                report.add(line, {"systems": ["Unknown system."]})
                break
            held_by.append(system_id)
        else:
            index = email_index(scope, data["email"])
            if index in seen:
                report.add(line, {"email": [f"Same e-mail as line {seen[index]}."]}, conflict=True)
                continue
            seen[index] = line
            valid.append((line, data, index, held_by))
    if not valid and not report.rows:
        raise ValidationFailed("The upload holds no rows.")

    # E-mails already in the account, checked in chunks through the blind index, each
    # chunk a transaction of its own.
    indexes = list(seen)
    for start in range(0, len(indexes), IMPORT_CHUNK):
        chunk = indexes[start : start + IMPORT_CHUNK]
        for taken in db.session.scalars(
            for_account(Subject, account, Subject.email_index).where(Subject.email_index.in_(chunk))
        ):
            report.add(seen[taken], {"email": [DUPLICATE_EMAIL]}, conflict=True)
        db.session.commit()
    if report.rows:
        report.rows.sort(key=lambda r: r["line"])
        errors = {"rows": report.rows}
        if report.truncated:
            errors["truncated"] = True
        cls = Conflict if report.conflicts_only else ValidationFailed
        raise cls("The import was rejected; nothing was imported.", errors=errors)

    import_id = uuid.uuid4()
    staged = len(valid) > chunk_size and db.session.get_bind().dialect.name == "sqlite"
    try:
        if staged:
            _insert_staged(account_id, scope, import_id, valid, chunk_size)
        else:
            _insert_direct(account_id, scope, valid, chunk_size)
        audit.record(
            account,
            action="subjects.imported",
            object_type="import",
            object_id=import_id,
            data={"count": len(valid)},
            actor=actor,
        )
        db.session.commit()
    except IntegrityError:
        # Another request added one of these e-mails since the check: a conflict, and
        # nothing of this import stays.
        db.session.rollback()
        raise Conflict(
            "The import was rejected; nothing was imported: " + DUPLICATE_EMAIL
        ) from None
    finally:
        if staged:
            db.session.rollback()
            _drop_staged(import_id, chunk_size)
    return import_id, len(valid)


def _subject_rows(account_id: int, scope: str, chunk: list, now) -> list[dict]:
    """The column values of a chunk of valid import rows: encrypted and indexed."""
    rows = []
    for _line, data, index, _held in chunk:
        public_id = uuid.uuid4()
        name_ct, email_ct, key_id = encrypt_contact(
            "subjects", public_id, data["name"], data["email"]
        )
        ref = data["external_ref"]
        rows.append(
            {
                "public_id": public_id,
                "account_id": account_id,
                "name_ct": name_ct,
                "email_ct": email_ct,
                "key_id": key_id,
                "email_index": index,
                "email_hash_index": _hash_index(scope, email_hash(data["email"])),
                "external_ref_ct": (
                    encrypt_field("subjects", public_id, "external_ref", ref) if ref else None
                ),
                "external_ref_index": ref_index(scope, ref) if ref else None,
                "source": data["source"],
                "created_at": now,
            }
        )
    return rows


def _insert_direct(account_id: int, scope: str, valid: list, chunk_size: int) -> None:
    """Every row into subjects and holdings in one transaction, left open for the caller."""
    now = utcnow()
    begin_write()
    for start in range(0, len(valid), chunk_size):
        chunk = valid[start : start + chunk_size]
        params = [
            {**row, "updated_at": now} for row in _subject_rows(account_id, scope, chunk, now)
        ]
        needs_ids = any(held for *_, held in chunk)
        ids = bulk_insert(Subject.__table__, params, return_ids=needs_ids)
        if not needs_ids:
            continue
        holdings = [
            {"account_id": account_id, "subject_id": subject_id, "system_id": system_id}
            for subject_id, (_line, _data, _index, held) in zip(ids, chunk, strict=True)
            for system_id in held
        ]
        bulk_insert(Holding.__table__, holdings)


def _insert_staged(
    account_id: int, scope: str, import_id: uuid.UUID, valid: list, chunk_size: int
) -> None:
    """Stage the rows a chunk per committed transaction, then begin the transaction that
    publishes them (left open for the caller's audit row and commit)."""
    purge_staged()
    now = utcnow()
    for start in range(0, len(valid), chunk_size):
        chunk = valid[start : start + chunk_size]
        rows = [
            {**row, "import_id": import_id} for row in _subject_rows(account_id, scope, chunk, now)
        ]
        holdings = [
            {
                "import_id": import_id,
                "account_id": account_id,
                "subject_public_id": row["public_id"],
                "system_id": system_id,
            }
            for row, (_line, _data, _index, held) in zip(rows, chunk, strict=True)
            for system_id in held
        ]
        _stage_chunk(rows, holdings)
    begin_write()
    _publish(import_id)


def _stage_chunk(rows: list[dict], holdings: list[dict]) -> None:
    """One chunk of staged rows in a transaction of its own (a brief hold of the lock)."""
    begin_write()
    bulk_insert(StagedSubject.__table__, rows)
    bulk_insert(StagedHolding.__table__, holdings)
    db.session.commit()


_SUBJECT_COLUMNS = (
    "public_id",
    "account_id",
    "name_ct",
    "email_ct",
    "key_id",
    "email_index",
    "email_hash_index",
    "external_ref_ct",
    "external_ref_index",
    "source",
    "created_at",
)


def _publish(import_id: uuid.UUID) -> None:
    """Move an import's staged rows into subjects and holdings, in the caller's transaction:
    two statements, no row passes through Python. A unique e-mail violation (one added
    since the check) is IntegrityError."""
    staged, staged_holdings = StagedSubject.__table__, StagedHolding.__table__
    subjects, holdings = Subject.__table__, Holding.__table__
    connection = db.session.connection()
    cache = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size={PUBLISH_CACHE_KIB}")
    db.session.execute(
        subjects.insert().from_select(
            [*_SUBJECT_COLUMNS, "updated_at"],
            select(
                *(staged.c[name] for name in _SUBJECT_COLUMNS),
                staged.c.created_at.label("updated_at"),
            )
            .where(staged.c.import_id == import_id)
            .order_by(staged.c.id),
        )
    )
    db.session.execute(
        holdings.insert().from_select(
            ["account_id", "subject_id", "system_id"],
            select(staged_holdings.c.account_id, subjects.c.id, staged_holdings.c.system_id)
            .join(subjects, subjects.c.public_id == staged_holdings.c.subject_public_id)
            .where(staged_holdings.c.import_id == import_id),
        )
    )
    connection.exec_driver_sql(f"PRAGMA cache_size={int(cache)}")


def _drop_staged(import_id: uuid.UUID, chunk_size: int) -> None:
    """Delete an import's staged rows, a chunk per transaction; best effort (what is left
    is purged later), so that the import's own answer stands."""
    try:
        for table in (StagedHolding.__table__, StagedSubject.__table__):
            while True:
                begin_write()
                ids = select(table.c.id).where(table.c.import_id == import_id).limit(chunk_size)
                done = db.session.execute(delete(table).where(table.c.id.in_(ids))).rowcount
                db.session.commit()
                if not done:
                    break
    except Exception:  # noqa: BLE001 - the answer stands; the hourly purge takes the rest
        db.session.rollback()
        logger.warning("staged rows of import %s left for the purge", import_id)


def purge_staged(older_than: timedelta = STAGED_MAX_AGE) -> int:
    """Delete the staged rows of imports begun more than `older_than` ago (their process
    died before it cleaned up); commits. Returns how many staged subjects were deleted."""
    cutoff = utcnow() - older_than
    staged, staged_holdings = StagedSubject.__table__, StagedHolding.__table__
    begin_write()
    stale = select(staged.c.import_id).where(staged.c.created_at < cutoff)
    db.session.execute(delete(staged_holdings).where(staged_holdings.c.import_id.in_(stale)))
    deleted = db.session.execute(delete(staged).where(staged.c.created_at < cutoff)).rowcount
    db.session.commit()
    return deleted


def validate_import_row(row: dict) -> tuple[dict, dict]:
    """Check one import row with the same rules as SubjectCreateSchema, without its overhead.

    Returns (clean data, {}) or ({}, field messages). A test holds the two rule sets equal.
    """
    errors: dict[str, list[str]] = {}
    data: dict = {}
    for key in row.keys() - IMPORT_FIELDS:
        errors[key] = ["Unknown field."]
    for key, clean in (("name", clean_name), ("email", normalize_email)):
        value = row.get(key)
        if value is None:
            errors[key] = ["Missing data for required field."]
            continue
        try:
            data[key] = clean(value)
        except ValueError as exc:
            errors[key] = [str(exc)]
    for key, limit in (("external_ref", MAX_EXTERNAL_REF), ("source", MAX_SOURCE)):
        value = row.get(key)
        if value is not None and not (isinstance(value, str) and 1 <= len(value) <= limit):
            errors[key] = [f"Text of 1 to {limit} characters."]
        data[key] = value
    systems = row.get("systems", [])
    if (
        not isinstance(systems, list)
        or len(systems) > MAX_SYSTEMS
        or not all(isinstance(ref, str) and 1 <= len(ref) <= 200 for ref in systems)
    ):
        errors["systems"] = [f"A list of at most {MAX_SYSTEMS} system names or ids."]
    data["systems"] = systems
    return ({}, errors) if errors else (data, {})
