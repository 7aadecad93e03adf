"""The worker side of requests: process one (package or erasure), resume stuck ones."""

from __future__ import annotations

import logging

from celery import shared_task

from privacy.accounts.models import Account
from privacy.dsr import erasure
from privacy.dsr import package
from privacy.dsr import services
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db

logger = logging.getLogger(__name__)


@shared_task(
    name="dsr.process", acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5
)
def process(request_id: int) -> str:
    """Verified -> in progress -> completed. Safe to run twice or after a crash."""
    request = db.session.get(DataSubjectRequest, request_id)
    if request is None:
        return "gone"
    account = db.session.get(Account, request.account_id)
    if request.status == "verified":
        services.transition(account, request, "in_progress", actor="system")
        db.session.commit()
    if request.status != "in_progress":
        return request.status
    if request.kind == "erasure":
        erasure.run(account, request)
    else:
        _deliver_package(account, request)
    logger.info("request %s %s", request.public_id, request.status)
    return request.status


def _deliver_package(account: Account, request: DataSubjectRequest) -> None:
    from privacy.dsr import notices
    from privacy.dsr import results

    subject = services.find_subject(account, request)
    request.no_data_held = subject is None
    request.subject_ref = subject.public_id if subject is not None else None
    request.results_count = package.write_access(account, request, subject)
    url = results.issue_link(request)
    services.transition(account, request, "completed", actor="system")
    notices.completed(account, request, url)
    db.session.commit()


@shared_task(name="dsr.resume")
def resume() -> int:
    """Beat: (re)queue requests left verified or in progress (a lost message, a killed
    worker). Processing is idempotent, so queueing one twice does no harm."""
    ids = services.open_request_ids()
    for request_id in ids:
        process.delay(request_id)
    return len(ids)
