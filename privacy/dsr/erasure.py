"""Erasure (Art. 17) in steps that can each be repeated, so a worker killed at any point
leaves a request that completes when the task runs again:

1. find the subject and remember who it is (subject_ref, the hash index) - committed;
2. fix ledger_at, then write the erasure-ledger entry (object storage, a key made of
   ledger_at and the request id, so a re-run writes the same object);
3. record an erasure instruction per system holding a copy (Art. 19) - unique per system;
4. delete the subject from the inventory (holdings go with it) and audit it;
5. write the receipt and complete the request.

Nothing is reported done before step 5, and step 5 only runs after 1-4 held.
"""

from __future__ import annotations

from privacy.accounts.models import Account
from privacy.audit import services as audit
from privacy.database import for_account
from privacy.database import utcnow
from privacy.dsr import ledger
from privacy.dsr import package
from privacy.dsr import services
from privacy.dsr.models import DataSubjectRequest
from privacy.dsr.models import ErasureInstruction
from privacy.extensions import db
from privacy.inventory import services as inventory
from privacy.inventory.models import Subject


def run(account: Account, request: DataSubjectRequest) -> None:
    """Carry out (or resume) the erasure of an in-progress request."""
    subject = _identify(account, request)
    index = _index(account, request, subject)
    # Also when nothing is held now: an older backup may still hold the person, and a
    # restore of it must not bring them back.
    if index is not None:
        if request.ledger_at is None:
            request.ledger_at = utcnow()
            db.session.commit()  # the key's time is fixed before the entry exists
        ledger.append(
            account=account,
            index=index,
            erased_at=request.ledger_at,
            request_public_id=request.public_id,
        )
    if subject is not None:
        _instruct(request, subject)
        audit.record(
            account,
            action="subject.erased",
            object_type="subject",
            object_id=subject.public_id,
            data={"request": str(request.public_id), "systems": len(subject.systems)},
            actor="system",
        )
        db.session.delete(subject)
        db.session.commit()
    _finish(account, request)


def _identify(account: Account, request: DataSubjectRequest) -> Subject | None:
    """Step 1: the subject now, or (on a re-run after deletion) the one found before."""
    if request.subject_ref is not None:
        return db.session.scalar(
            for_account(Subject, account).where(Subject.public_id == request.subject_ref)
        )
    if request.no_data_held:
        return None
    subject = services.find_subject(account, request)
    if subject is None:
        request.no_data_held = True
    else:
        request.subject_ref = subject.public_id
        if request.identity_index is None:  # found by customer id: remember the e-mail hash
            request.identity_index = _subject_index(account, subject)
    db.session.commit()
    return subject


def _subject_index(account: Account, subject: Subject) -> str:
    return subject.email_hash_index or inventory.hash_index(
        account, inventory.email_hash(subject.email)
    )


def _index(account: Account, request: DataSubjectRequest, subject: Subject | None) -> str | None:
    if subject is not None:
        return _subject_index(account, subject)
    return request.identity_index


def _instruct(request: DataSubjectRequest, subject: Subject) -> None:
    """Step 3: one tracked instruction per system holding a copy (kept on re-runs)."""
    existing = {i.target_ref for i in request.instructions}
    for system in subject.systems:
        ref = f"system:{system.public_id}"
        if ref in existing:
            continue
        request.instructions.append(
            ErasureInstruction(
                target_ref=ref,
                target_name=system.name,
                target_kind=system.kind,
                region=system.region,
                created_at=utcnow(),
            )
        )
    db.session.flush()


def _finish(account: Account, request: DataSubjectRequest) -> None:
    from privacy.dsr import notices
    from privacy.dsr import results

    request.results_count = package.write_receipt(account, request)
    url = results.issue_link(request)
    services.transition(
        account,
        request,
        "completed",
        actor="system",
        note="no data held" if request.no_data_held else None,
    )
    notices.completed(account, request, url)
    db.session.commit()


def confirm_instruction(
    account: Account, request: DataSubjectRequest, instruction_id, *, actor: str
) -> ErasureInstruction:
    """Record that a system confirmed the erasure (409 if already confirmed)."""
    from privacy.errors import Conflict
    from privacy.errors import NotFound

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
