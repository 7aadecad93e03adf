"""Write audit events in the caller's transaction, hash-chained per account; verify the chains."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from privacy import logs
from privacy.audit.models import AuditChain
from privacy.audit.models import AuditEvent
from privacy.database import utcnow
from privacy.extensions import db

GENESIS = "0" * 64
# The actor recorded for work no request's caller asked for: tasks, commands, the scheduler.
SYSTEM = "system"
# The access-control changes an account's admins are shown (members, roles, tokens, grants).
ACCESS_CHANGES = (
    "member.added",
    "member.invited",
    "member.role_changed",
    "member.removed",
    "token.created",
    "token.revoked",
    "grant.created",
    "grant.revoked",
)
PLATFORM_CHAIN = "platform"


def chain_for(account) -> str:
    return f"account:{account.public_id}" if account is not None else PLATFORM_CHAIN


def _digest(fields: dict) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _fields(event) -> dict:
    """The hashed fields of a row: an AuditEvent, or the dict `record_many` inserts."""
    get = event.get if isinstance(event, dict) else lambda name: getattr(event, name)
    return {
        "chain": get("chain"),
        "seq": get("seq"),
        "prev": get("prev_hash"),
        "account": get("account_ref"),
        "actor": get("actor"),
        "action": get("action"),
        "object_type": get("object_type"),
        "object_id": get("object_id"),
        "request_id": get("request_id"),
        "at": get("created_at").isoformat(timespec="microseconds"),
        "data": get("data"),
    }


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One event for `record_many`. `actor` says who acts: the signed-in member or token of
    a request (`member:<id>`, `token:<id>`), SYSTEM for tasks and the scheduler, what a
    command is for commands. Services take it from their caller; nothing here guesses it."""

    action: str
    actor: str
    object_type: str | None = None
    object_id: object = None
    data: dict | None = None


# Core statements, built once: no ORM bookkeeping for the rows written most often.
_chains = AuditChain.__table__
_events = AuditEvent.__table__
_BUMP = (
    update(_chains)
    .where(_chains.c.chain == bindparam("chain_name"))
    .values(seq=_chains.c.seq + bindparam("count"))
    .returning(_chains.c.seq, _chains.c.hash)
)
_SET_HASH = (
    update(_chains).where(_chains.c.chain == bindparam("chain_name")).values(hash=bindparam("head"))
)
_INSERT = insert(_events)


def _advance_head(chain: str, count: int) -> tuple[int, str]:
    """Move the chain head's sequence on by `count`; return (its new seq, the previous hash).

    The UPDATE comes first so the head row (PostgreSQL) or the database (SQLite) is
    write-locked before we read it: concurrent writers queue instead of forking the chain.
    """
    params = {"chain_name": chain, "count": count}
    row = db.session.execute(_BUMP, params).one_or_none()
    if row is None:
        try:
            with db.session.begin_nested():
                db.session.execute(insert(_chains).values(chain=chain, seq=count, hash=GENESIS))
            return count, GENESIS
        except IntegrityError:  # another transaction created it first
            row = db.session.execute(_BUMP, params).one()
    return row.seq, row.hash


def record(
    account,
    *,
    action: str,
    object_type: str | None = None,
    object_id=None,
    data: dict | None = None,
    actor: str,
) -> None:
    """Append one event to the account's chain (or the platform chain) in the current transaction.

    `data` must hold ids and counts only, never names, e-mails or bodies. Pass `actor`
    (required: see Entry). The request id comes from
    `logs.request_id()` (None outside an HTTP request).
    """
    record_many(
        account,
        [
            Entry(
                action=action, object_type=object_type, object_id=object_id, data=data, actor=actor
            )
        ],
    )


def record_many(account, entries: list[Entry]) -> None:
    """Append several events to one chain, in order, with three statements whatever their number.

    On PostgreSQL the first statement locks the chain's head row until the commit: call this
    last in a transaction, and once rather than in a loop.
    """
    if not entries:
        return
    chain = chain_for(account)
    last_seq, prev_hash = _advance_head(chain, len(entries))
    account_ref = str(account.public_id) if account is not None else None
    request_id = logs.request_id()
    now = utcnow()
    rows = []
    for seq, entry in enumerate(entries, start=last_seq - len(entries) + 1):
        row = {
            "chain": chain,
            "seq": seq,
            "account_ref": account_ref,
            "actor": entry.actor,
            "action": entry.action,
            "object_type": entry.object_type,
            "object_id": str(entry.object_id) if entry.object_id is not None else None,
            "request_id": request_id,
            "created_at": now,
            "data": entry.data or None,
            "prev_hash": prev_hash,
        }
        row["hash"] = prev_hash = _digest(_fields(row))
        rows.append(row)
    db.session.execute(_INSERT, rows)
    db.session.execute(_SET_HASH, {"chain_name": chain, "head": prev_hash})


def list_events(
    account,
    *,
    after_id: int | None,
    limit: int,
    action: str | None = None,
    actions: tuple[str, ...] | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
) -> list[AuditEvent]:
    """Newest first, for one account's admins; `actions` keeps only those actions."""
    query = select(AuditEvent).where(AuditEvent.account_ref == str(account.public_id))
    if after_id is not None:
        query = query.where(AuditEvent.id < after_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if actions is not None:
        query = query.where(AuditEvent.action.in_(actions))
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if since:
        query = query.where(AuditEvent.created_at >= since)
    return list(db.session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))


def verify() -> Iterator[str]:
    """Yield one message per defect: an edited, inserted or deleted row, or a bad head."""
    heads = {row.chain: row for row in db.session.scalars(select(AuditChain))}
    state: dict[str, tuple[int, str]] = {}
    query = select(AuditEvent).order_by(AuditEvent.chain, AuditEvent.seq)
    for event in db.session.scalars(query.execution_options(yield_per=2000)):
        seq, prev = state.get(event.chain, (0, GENESIS))
        where = f"chain {event.chain} seq {event.seq} (row id {event.id})"
        if event.seq != seq + 1:
            yield f"{where}: expected seq {seq + 1}; rows missing or inserted"
        if event.prev_hash != prev:
            yield f"{where}: link to the previous row is broken"
        if _digest(_fields(event)) != event.hash:
            yield f"{where}: contents do not match the row's hash (edited)"
        state[event.chain] = (event.seq, event.hash)
    for chain, head in heads.items():
        seq, last_hash = state.get(chain, (0, GENESIS))
        if head.seq != seq or head.hash != last_hash:
            yield f"chain {chain}: head says seq {head.seq} but the rows end at {seq}; rows deleted"
    for chain in state.keys() - heads.keys():
        yield f"chain {chain}: rows without a chain head"
