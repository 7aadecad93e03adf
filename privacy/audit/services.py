"""Write audit events in the caller's transaction, hash-chained per account; verify the chains."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime

from flask import g
from flask import has_app_context
from flask import has_request_context
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from privacy.audit.models import AuditChain
from privacy.audit.models import AuditEvent
from privacy.database import utcnow
from privacy.extensions import db

GENESIS = "0" * 64
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


def current_actor() -> str:
    """Who is acting: the authenticated token or member of this request, else the system."""
    if has_app_context() and g.get("actor"):
        return g.actor
    return "system"


def _digest(fields: dict) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _fields(event: AuditEvent) -> dict:
    return {
        "chain": event.chain,
        "seq": event.seq,
        "prev": event.prev_hash,
        "account": event.account_ref,
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "request_id": event.request_id,
        "at": event.created_at.isoformat(timespec="microseconds"),
        "data": event.data,
    }


def _advance_head(chain: str) -> tuple[int, str]:
    """Bump the chain head's sequence and return (new seq, previous hash).

    The UPDATE comes first so the head row (PostgreSQL) or the database (SQLite) is
    write-locked before we read it: concurrent writers queue instead of forking the chain.
    """
    bump = update(AuditChain).where(AuditChain.chain == chain).values(seq=AuditChain.seq + 1)
    if db.session.execute(bump).rowcount == 0:
        try:
            with db.session.begin_nested():
                db.session.execute(insert(AuditChain).values(chain=chain, seq=1, hash=GENESIS))
        except IntegrityError:
            db.session.execute(bump)
    row = db.session.execute(
        select(AuditChain.seq, AuditChain.hash).where(AuditChain.chain == chain)
    ).one()
    return row.seq, row.hash


def record(
    account,
    *,
    action: str,
    object_type: str | None = None,
    object_id=None,
    data: dict | None = None,
    actor: str | None = None,
) -> AuditEvent:
    """Append one event to the account's chain (or the platform chain) in the current transaction.

    `data` must hold ids and counts only, never names, e-mails or bodies.
    """
    chain = chain_for(account)
    seq, prev_hash = _advance_head(chain)
    event = AuditEvent(
        chain=chain,
        seq=seq,
        account_ref=str(account.public_id) if account is not None else None,
        actor=actor or current_actor(),
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        request_id=g.get("request_id") if has_request_context() else None,
        created_at=utcnow(),
        data=data or None,
        prev_hash=prev_hash,
    )
    event.hash = _digest(_fields(event))
    db.session.add(event)
    db.session.execute(update(AuditChain).where(AuditChain.chain == chain).values(hash=event.hash))
    return event


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
