"""The erasure ledger: one object per erased record (one per request that found none), in
object storage, outside the database.

Backups copy the database, not this prefix, so a restored backup can be corrected by
replaying every entry written after the backup was taken (`replay_erasures`). An entry holds
no plaintext: the account's public id, the erased record's public id, the keyed index of
the e-mail's SHA-256 and, for a request that named the person by the controller's customer
id, that id's keyed index (the same indexes the inventory uses), the time and the request
id. A replay deletes every subject an entry names by any of them. Entries are kept at
least 90 days, longer than any backup.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

from sqlalchemy import false
from sqlalchemy import or_
from sqlalchemy import select

from privacy import storage
from privacy.accounts.models import Account
from privacy.extensions import db
from privacy.inventory import services as inventory
from privacy.inventory.models import Subject

PREFIX = "erasure-ledger/"
STAMP = "%Y%m%dT%H%M%S.%fZ"


class LedgerUnreadable(RuntimeError):
    """The ledger could not be listed or an entry could not be read: a restore must stop."""


@dataclass(frozen=True)
class Entry:
    account: str
    index: str | None  # the e-mail hash's keyed index
    erased_at: datetime
    request: str
    ref_index: str | None = None  # the customer id's keyed index, if the request gave one
    subject: str | None = None  # the erased record's public id; None: none was held


def key_for(erased_at: datetime, request_public_id, subject: str | None = None) -> str:
    """Keys sort by time, so `since` is a prefix comparison; one key per request and record."""
    suffix = f"-{subject}" if subject else ""
    stamp = erased_at.astimezone(UTC).strftime(STAMP)
    return f"{PREFIX}{stamp}-{request_public_id}{suffix}.json"


def named(entry: Entry):
    """The condition on subjects that an entry names (by record, e-mail hash or customer id)."""
    clauses = []
    if entry.subject:
        clauses.append(Subject.public_id == _uuid(entry.subject))
    if entry.index:
        clauses.append(Subject.email_hash_index == entry.index)
    if entry.ref_index:
        clauses.append(Subject.external_ref_index == entry.ref_index)
    return or_(*clauses) if clauses else false()


def append(*, account: Account, index: str, erased_at: datetime, request_public_id) -> str:
    """Write the entry (idempotent: the same request and time give the same key)."""
    return write(
        Entry(
            account=str(account.public_id),
            index=index,
            erased_at=erased_at,
            request=str(request_public_id),
        )
    )


def write(entry: Entry) -> str:
    """Write an entry built beforehand; needs no database (runs between transactions)."""
    key = key_for(entry.erased_at, entry.request, entry.subject)
    body = {
        "account": entry.account,
        "index": entry.index,
        "erased_at": entry.erased_at.astimezone(UTC).isoformat(),
        "request": entry.request,
    }
    if entry.ref_index:
        body["ref_index"] = entry.ref_index
    if entry.subject:
        body["subject"] = entry.subject
    storage.get().put(key, json.dumps(body).encode(), content_type="application/json")
    return key


def remove(entry: Entry) -> None:
    """Withdraw the entry of an erasure that was refused before anything was deleted."""
    storage.get().delete(key_for(entry.erased_at, entry.request, entry.subject))


def entries(since: datetime | None = None):
    """Entries written at or after `since` (all when None), oldest first."""
    store = storage.get()
    start = key_for(since, "") if since is not None else PREFIX
    try:
        keys = [k for k in store.list(PREFIX) if k >= start]
        for key in sorted(keys):
            data = json.loads(store.get(key))
            yield Entry(
                account=data["account"],
                index=data.get("index"),
                erased_at=datetime.fromisoformat(data["erased_at"]),
                request=data["request"],
                ref_index=data.get("ref_index"),
                subject=data.get("subject"),
            )
    except (storage.StorageError, ValueError, KeyError) as exc:
        raise LedgerUnreadable(f"the erasure ledger cannot be read ({type(exc).__name__})") from exc


def replay_erasures(since: datetime | None = None, *, session=None) -> int:
    """Erase again every subject named by an entry since `since`, in the app's database or
    in the one `session` is bound to (a restore's target).

    Returns how many subjects were deleted. Run after every restore, before the restored
    database is used; raises LedgerUnreadable rather than report a partial replay.
    """
    session = session or db.session
    deleted = 0
    accounts: dict[str, Account | None] = {}
    for entry in list(entries(since)):
        if entry.account not in accounts:
            accounts[entry.account] = session.scalar(
                select(Account).where(Account.public_id == _uuid(entry.account))
            )
        account = accounts[entry.account]
        if account is None:  # the account itself is gone
            continue
        deleted += inventory.erase_matching(account, named(entry), session=session)
    session.commit()
    return deleted


def purge(*, older_than: datetime) -> int:
    """Delete entries written before `older_than` (no backup that old may exist)."""
    store = storage.get()
    end = key_for(older_than, "")
    old = [key for key in store.list(PREFIX) if key < end]
    for key in old:
        store.delete(key)
    return len(old)


def _uuid(text: str) -> uuid.UUID:
    return uuid.UUID(text)
