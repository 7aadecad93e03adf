"""OpenDSR status callbacks: one signed POST to every callback URL on every status change,
retried with backoff; deliveries that keep failing stay visible to the account's admins.
Every try of one delivery sends the same signed body and the same `Idempotency-Key`.
The HTTP client and the counting of tries are privacy.outbound's (shared with webhooks).
"""

from __future__ import annotations

import json
import logging

from celery import Task

from privacy import jobs
from privacy import outbound
from privacy.database import utcnow
from privacy.dsr import opendsr
from privacy.dsr import signing
from privacy.dsr.models import CallbackDelivery
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db

logger = logging.getLogger(__name__)
USER_AGENT = "privacy-opendsr-callbacks/1"


def queue_status_callbacks(request: DataSubjectRequest) -> None:
    """A delivery row per callback URL (a URL listed twice is called once), sent after the
    commit by the task "dsr.deliver_callback" (`deliver`)."""
    for url in dict.fromkeys(request.callback_urls or ()):
        delivery = CallbackDelivery(
            request_id=request.id,
            url=url,
            status=request.opendsr_status,
            created_at=utcnow(),
        )
        db.session.add(delivery)
        db.session.flush()
        jobs.after_commit("dsr.deliver_callback", delivery.id)


def body_for(request: DataSubjectRequest, url: str, status: str) -> dict:
    """The callback's JSON: the status recorded when the delivery was queued (a retried
    in_progress callback stays in_progress), with the results only when it says completed."""
    body = {
        "controller_id": opendsr.controller_id(request),
        "status_callback_url": url,
        "subject_request_id": str(request.subject_request_id),
        "request_status": status,
        "expected_completion_time": opendsr.rfc3339(request.due_at),
    }
    if status == "completed":
        body.update(opendsr.results_fields(request))
    return body


def idempotency_key(delivery: CallbackDelivery) -> str:
    """The `Idempotency-Key` of every try of `delivery` (one status to one URL): a controller
    that got a try already drops a repeat. The signed body is the same on every try too."""
    return outbound.idempotency_key(
        CallbackDelivery.__tablename__, delivery.id, delivery.created_at
    )


# -- delivery ----------------------------------------------------------------------------


def deliver(task: Task, delivery_id: int) -> str:
    """Run by the task "dsr.deliver_callback": send one try of a delivery unless it is no
    longer pending (a delivered one is never sent again); see privacy.outbound.deliver for
    how tries are counted, retried and recorded. A failure keeps only the status code or
    the error's class in `last_error`."""

    def claim() -> outbound.Outgoing | str:
        delivery = db.session.get(CallbackDelivery, delivery_id)
        if delivery is None:
            return "gone"
        if delivery.state != "pending":
            return delivery.state
        request = db.session.get(DataSubjectRequest, delivery.request_id)
        body = json.dumps(body_for(request, delivery.url, delivery.status)).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            outbound.IDEMPOTENCY_HEADER: idempotency_key(delivery),
            **signing.get().headers(body),
        }
        delivery.attempts += 1
        return outbound.Outgoing(delivery.url, body, headers, delivery.attempts)

    def record(outcome: outbound.Outcome) -> None:
        delivery = db.session.get(CallbackDelivery, delivery_id)
        if delivery is None:  # its request was deleted meanwhile
            return
        delivery.state = outcome.state
        delivery.last_error = outcome.error
        if outcome.delivered:
            delivery.delivered_at = utcnow()
            return
        request = db.session.get(DataSubjectRequest, delivery.request_id)
        logger.warning(
            "callback %s for request %s failed (%s, attempt %s%s)",
            delivery.id,
            request.public_id,
            outcome.error,
            outcome.attempt,
            ", giving up" if outcome.final else "",
        )

    return outbound.deliver(task, claim=claim, record=record)
