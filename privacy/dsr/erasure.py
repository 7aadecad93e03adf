"""Erasure (Art. 17) in steps that can each be repeated, so a worker killed at any point
leaves a request that completes when the task runs again. `erase` (the task "dsr.process")
runs them in two short transactions, with object storage between them, for a batch of the
account's erasures at once (`claim`):

`prepare` (first transaction, committed with the move to in_progress, after which the
requester can no longer cancel):
1. find every subject the request names (its e-mail hash, and every record that carries its
   customer id: one customer id may name several records) and remember who was found
   (subject_ref, the first one; the hash index);
2. fix ledger_at, the time in the ledger entries' keys, so that a re-run writes the same
   objects: one entry per record found (one for the request when none is held);
3. plan one erasure instruction per system holding a copy of any of them (Art. 19), for
   the receipt.

Between the transactions: the erasure-ledger entries (object storage, outside the database
that backups copy), then the receipt's JSON, which names the planned instructions.

`finish` (second transaction, holding the request's lock):
4. record the instructions and have the inventory delete the subjects
   (`inventory.erase_subjects`: holdings go with them, and with each row its encrypted
   name, e-mail and customer id and their indexes);
5. audit each erasure, complete the request (the receipt's link, the status, the notice).

Steps 4 and 5 commit together, so nothing is reported done before every deletion and
nothing is deleted without its audit row; the ledger entries exist before that transaction
begins. Audit rows come last in each transaction: the first one locks the account's audit
chain until the commit.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from privacy.accounts.models import Account
from privacy.audit import services as audit
from privacy.database import for_account
from privacy.database import utcnow
from privacy.dsr import ledger
from privacy.dsr import notices
from privacy.dsr import package
from privacy.dsr import results
from privacy.dsr import services
from privacy.dsr.models import DataSubjectRequest
from privacy.dsr.models import ErasureInstruction
from privacy.errors import Conflict
from privacy.errors import NotFound
from privacy.extensions import db
from privacy.inventory import services as inventory
from privacy.inventory.models import Subject

logger = logging.getLogger(__name__)
_requests = DataSubjectRequest.__table__


# An erasure task also takes up to this many other verified erasures of the same account, in
# the same two transactions: commits, the account's audit-chain lock and the lookups are
# shared, so a burst of erasures (a controller's 1,000 at once) drains many times faster.
ERASURE_BATCH = 100
# How long a worker's claim on the erasures of its batch holds. Other deliveries of their
# tasks meanwhile leave them alone; once it passes, the worker is presumed dead and the
# request is worked again (by the sweep, "dsr.resume", or a redelivered task). A batch
# takes well under a second; the claim is long enough for slow object storage.
CLAIM = timedelta(minutes=2)


def erase(account: Account, request: DataSubjectRequest, *, actor: str) -> str:
    """Erase `request` (verified or in progress, locked by the caller: `services.nothing_to_do`),
    and up to ERASURE_BATCH - 1 other verified erasures of its account (`claim`), with the
    steps below in two transactions (the first is the caller's), the ledger entries and
    receipts written to object storage between them. Returns `request`'s status.

    `actor` is who the history and the audit log name (the system, in the worker).
    """
    batch = claim(account, request)
    found = find_subjects(account, batch)
    batch = _one_per_subject(batch, found)
    claimed_until = utcnow() + CLAIM
    work = []
    entries: list = []
    for each in batch:
        prepared = prepare(account, each, found[each.id])
        each.claimed_until = claimed_until
        if each.status == "verified":
            services.transition(account, each, "in_progress", actor=actor, audit_into=entries)
        work.append((each, prepared))
    db.session.flush()
    # Last before the commit: the audit rows lock the account's audit chain until then.
    audit.record_many(account, entries)
    # The second transaction checks under its lock what others may have changed meanwhile
    # (the statuses, the subjects' holdings) instead of loading everything again: keep the
    # requests (with their history and instructions), the account and the subjects loaded.
    db.session().expire_on_commit = False
    db.session.commit()  # no longer cancellable; the ledger times fixed for re-runs
    try:
        return _finish_batch(account, request, work, actor=actor)
    except Exception:
        # Object storage or the database failed: give the claims back, so that the task's
        # retry works the batch again at once rather than after the claim. (A killed worker
        # runs nothing more: its claims run out.)
        db.session.rollback()
        _release([each.id for each, _ in work])
        raise


def claim(account: Account, request: DataSubjectRequest) -> list[DataSubjectRequest]:
    """`request` (locked by the caller), then up to ERASURE_BATCH - 1 other verified
    erasures of the account, oldest first, loaded with their history and instructions.

    On PostgreSQL they are locked FOR UPDATE SKIP LOCKED: rows another worker holds (its own
    batch, or a task looking at its request) are left to it. On SQLite the transaction holds
    the database's write lock already.
    """
    ids = db.session.scalars(
        for_account(DataSubjectRequest, account, DataSubjectRequest.id)
        .where(
            DataSubjectRequest.kind == "erasure",
            DataSubjectRequest.status == "verified",
            DataSubjectRequest.id != request.id,
        )
        .order_by(DataSubjectRequest.id)
        .limit(ERASURE_BATCH - 1)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        return [request]
    others = db.session.scalars(
        select(DataSubjectRequest)
        .where(DataSubjectRequest.id.in_(ids))
        .order_by(DataSubjectRequest.id)
        .execution_options(populate_existing=True)
    ).all()
    return [request, *others]


def _one_per_subject(batch: list[DataSubjectRequest], found: dict) -> list[DataSubjectRequest]:
    """Two erasures of the same record in one batch: keep the first; the other stays
    verified for its own task, which will find no one left (or only what the first left)."""
    seen: set = set()
    kept = []
    for each in batch:
        ids = {subject.id for subject in found[each.id]}
        if ids & seen and each is not batch[0]:
            continue
        seen |= ids
        kept.append(each)
    return kept


@dataclass
class Prepared:
    """What `prepare` decided, to act on after its transaction is committed."""

    subjects: list[Subject]  # as found, with the systems holding a copy
    entries: list[ledger.Entry]  # to write before anything is deleted
    instructions: list[ErasureInstruction]  # planned, not yet in the session
    prefix: str  # where the receipt goes
    receipt: bytes  # the receipt's JSON, naming the planned instructions


_LOOK_UP = object()  # `prepare` finds the subjects itself


def prepare(account: Account, request: DataSubjectRequest, found=_LOOK_UP) -> Prepared:
    """Steps 1-3 for a verified (or interrupted in-progress) request, in the caller's
    transaction; the caller moves it to in_progress and commits.

    One ledger entry per subject found; when none is held now, one for the request all
    the same (an older backup may still hold the person, and a restore of it must not
    bring them back), unless no e-mail hash or customer id is known to name them. `found`
    is the list `find_subjects` found for a batch, instead of a query per request.
    """
    subjects = _identify(account, request, found)
    request.results_prefix = package.prefix_for(account, request)
    planned = _plan(request, subjects)
    entries = _entries(account, request, subjects)
    receipt = package.receipt_bytes(account, request, [*request.instructions, *planned])
    return Prepared(
        subjects=subjects,
        entries=entries,
        instructions=planned,
        prefix=request.results_prefix,
        receipt=receipt,
    )


def _entries(
    account: Account, request: DataSubjectRequest, subjects: list[Subject]
) -> list[ledger.Entry]:
    named = [(_subject_index(account, s), str(s.public_id)) for s in subjects]
    if not named and (request.identity_index or request.customer_index):
        named = [(request.identity_index, None)]
    if not named:
        return []
    if request.ledger_at is None:
        request.ledger_at = utcnow()
    return [
        ledger.Entry(
            account=str(account.public_id),
            index=index,
            erased_at=request.ledger_at,
            request=str(request.public_id),
            ref_index=request.customer_index,
            subject=subject,
        )
        for index, subject in named
    ]


def _finish_batch(account: Account, request: DataSubjectRequest, work: list, *, actor: str) -> str:
    """Between the transactions, the ledger entries and receipts; then, in the second, every
    request of the batch still in progress is finished (rejected ones are left alone)."""
    for _, prepared in work:
        for entry in prepared.entries:
            ledger.write(entry)  # before anything is deleted
        package.put(prepared.prefix, "receipt.json", prepared.receipt)

    statuses = services.lock_statuses([each.id for each, _ in work])
    held = inventory.held_by([s for _, p in work for s in p.subjects])
    entries = []
    for each, prepared in work:
        status = statuses.get(each.id)
        if status != "in_progress":
            # Rejected meanwhile (nothing was deleted), or completed by another run.
            if status != "completed":
                for entry in prepared.entries:
                    ledger.remove(entry)  # a restore must not erase them either
                package.remove(prepared.prefix, "receipt.json")
            continue
        finish(account, each, prepared, held=held, audit_into=entries, actor=actor)
        statuses[each.id] = "completed"
    db.session.flush()
    audit.record_many(account, entries)
    db.session.commit()
    if len(work) > 1:
        logger.info("erasure batch of %d requests of account %s", len(work), account.public_id)
    return statuses.get(request.id) or "gone"


def _release(request_ids: list[int]) -> None:
    """End the claims on requests still in progress; best effort (a claim also runs out)."""
    try:
        services.write_lock(request_ids[0])
        db.session.execute(
            update(_requests)
            .where(_requests.c.id.in_(request_ids), _requests.c.status == "in_progress")
            .values(claimed_until=None)
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        logger.warning("claims on %d erasures not released; they run out", len(request_ids))


def finish(
    account: Account,
    request: DataSubjectRequest,
    prepared: Prepared,
    *,
    held: dict | None = None,
    audit_into: list | None = None,
    actor: str,
) -> None:
    """Steps 4-5 for an in-progress request, in a transaction that holds its lock, after the
    ledger entries and the receipt were written; the caller commits.

    `request`, `account` and `prepared.subjects` are the objects `prepare` had, still loaded:
    what others may have changed since (the subjects' holdings, the subjects themselves) is
    checked here with one query rather than loaded again. A batch passes `held` (from
    `inventory.held_by`, for all its subjects at once) and `audit_into` (its audit entries,
    recorded together by the caller, last in the transaction). The inventory deletes the
    subjects (`inventory.erase_subjects`); each erasure is audited here, in the request's
    name.
    """
    if held is None:
        held = inventory.held_by(prepared.subjects)
    subjects = []
    for subject in prepared.subjects:
        now_held = held.get(subject.id)
        if now_held is None:  # deleted meanwhile by other means: nothing left to delete
            continue
        if now_held != {system.public_id for system in subject.systems}:
            db.session.refresh(subject)  # its holdings changed: plan against the current ones
        subjects.append(subject)
    erased = []
    if subjects:
        existing = {i.target_ref for i in request.instructions}
        request.instructions.extend(
            i for i in prepared.instructions if i.target_ref not in existing
        )
        late = _plan(request, subjects)
        if late:  # a system got a copy after step 3: instruct it too, and say so
            request.instructions.extend(late)
            db.session.flush()
            package.write_receipt(account, request)
        erased = [(subject.public_id, len(subject.systems)) for subject in subjects]
        inventory.erase_subjects(subjects)
    # The audit rows last: the first one locks the account's audit chain until the commit.
    entries = audit_into if audit_into is not None else []
    for public_id, systems in erased:
        entries.append(
            audit.Entry(
                action="subject.erased",
                object_type="subject",
                object_id=public_id,
                data={"request": str(request.public_id), "systems": systems},
                actor=actor,
            )
        )
    request.results_count = package.RECEIPT_COUNT
    url = results.issue_link(request)
    services.transition(
        account,
        request,
        "completed",
        actor=actor,
        note="no data held" if request.no_data_held else None,
        audit_into=entries,
    )
    notices.completed(account, request, url)
    if audit_into is None:
        db.session.flush()
        audit.record_many(account, entries)


def _identify(account: Account, request: DataSubjectRequest, found=_LOOK_UP) -> list[Subject]:
    """Step 1: the subjects now; the first run remembers who was found (or that no one was)."""
    subjects = find_subjects(account, [request])[request.id] if found is _LOOK_UP else found
    if request.subject_ref is not None or request.no_data_held:
        return subjects
    if not subjects:
        request.no_data_held = True
    else:
        request.subject_ref = subjects[0].public_id
        if request.identity_index is None:  # found by customer id: remember the e-mail hash
            request.identity_index = _subject_index(account, subjects[0])
    return subjects


def find_subjects(account: Account, requests: list[DataSubjectRequest]) -> dict:
    """Step 1's lookup for a batch in one query: request id -> its subjects (a list, oldest
    first; empty for no one).

    The same rules as services.find_subjects, and a re-run finds again the records found
    before (subject_ref) as well; a request already found to name no one stays so.
    """
    live = [r for r in requests if not (r.no_data_held and r.subject_ref is None)]
    refs = {r.subject_ref for r in live if r.subject_ref is not None}
    indexes = {r.identity_index for r in live if r.identity_index}
    customers = {r.customer_index for r in live if r.customer_index}
    clauses = []
    if refs:
        clauses.append(Subject.public_id.in_(refs))
    if indexes:
        clauses.append(Subject.email_hash_index.in_(indexes))
    if customers:
        clauses.append(Subject.external_ref_index.in_(customers))
    candidates = (
        db.session.scalars(
            for_account(Subject, account).where(or_(*clauses)).order_by(Subject.id)
        ).all()
        if clauses
        else []
    )
    found = {r.id: [] for r in requests}
    for r in live:
        found[r.id] = [
            s
            for s in candidates
            if s.public_id == r.subject_ref
            or (r.identity_index and s.email_hash_index == r.identity_index)
            or (r.customer_index and s.external_ref_index == r.customer_index)
        ]
    return found


def _subject_index(account: Account, subject: Subject) -> str:
    return subject.email_hash_index or inventory.hash_index(
        account, inventory.email_hash(subject.email)
    )


def _plan(request: DataSubjectRequest, subjects: list[Subject]) -> list[ErasureInstruction]:
    """Step 3: an instruction for each system holding a copy of any of the subjects that has
    none yet (re-runs keep theirs); one per system, whatever the number of records it
    holds. Not added to the session: the caller decides when they are recorded.

    The public id follows from the request and the system, so a second delivery of the
    task, running at the same time, plans the same ids, and the receipt either run writes
    names the instructions that are recorded.
    """
    existing = {i.target_ref for i in request.instructions}
    systems = {system.id: system for subject in subjects for system in subject.systems}
    return [
        ErasureInstruction(
            public_id=uuid.uuid5(request.public_id, f"system:{system.public_id}"),
            target_ref=f"system:{system.public_id}",
            target_name=system.name,
            target_kind=system.kind,
            region=system.region,
            state="pending",
            created_at=utcnow(),
        )
        for _, system in sorted(systems.items())
        if f"system:{system.public_id}" not in existing
    ]


def confirm_instruction(
    account: Account, request: DataSubjectRequest, instruction_id, *, actor: str
) -> ErasureInstruction:
    """Record that a system confirmed the erasure (409 if already confirmed)."""
    for instruction in request.instructions:
        if instruction.public_id == instruction_id:
            break
    else:
        raise NotFound("Instruction not found.")
    if instruction.state == "confirmed":
        raise Conflict("This instruction was confirmed already.")
    instruction.state = "confirmed"
    instruction.confirmed_at = utcnow()
    instruction.confirmed_by = actor
    audit.record(
        account,
        action="dsr.instruction_confirmed",
        object_type="dsr_request",
        object_id=request.public_id,
        data={"instruction": str(instruction.public_id)},
        actor=actor,
    )
    return instruction
