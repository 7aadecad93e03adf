"""OpenDSR status callbacks: one signed POST to every callback URL on every status change,
retried with backoff; deliveries that keep failing stay visible to the account's admins."""

from __future__ import annotations

import json
import logging

import requests
from celery import shared_task
from flask import current_app

from privacy import jobs
from privacy.database import utcnow
from privacy.dsr.models import CallbackDelivery
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10
MAX_RETRIES = 8  # backoff 2, 4, ... 256 s: about eight and a half minutes in all


class CallbackFailed(Exception):
    pass


def queue_status_callbacks(request: DataSubjectRequest) -> None:
    """A delivery row per callback URL, sent after the commit."""
    for url in request.callback_urls or ():
        delivery = CallbackDelivery(
            request_id=request.id,
            url=url,
            status=request.opendsr_status,
            created_at=utcnow(),
        )
        db.session.add(delivery)
        db.session.flush()
        jobs.after_commit(deliver, delivery.id)


def body_for(request: DataSubjectRequest, url: str, status: str) -> dict:
    from privacy.dsr import opendsr

    return {
        "controller_id": opendsr.controller_id(request),
        "status_callback_url": url,
        "subject_request_id": str(request.subject_request_id),
        "request_status": status,
        "expected_completion_time": opendsr.rfc3339(request.due_at),
        **opendsr.results_fields(request),
    }


@shared_task(name="dsr.deliver_callback", bind=True, max_retries=MAX_RETRIES, acks_late=True)
def deliver(self, delivery_id: int) -> str:
    from privacy.dsr import signing

    delivery = db.session.get(CallbackDelivery, delivery_id)
    if delivery is None or delivery.state == "delivered":
        return "gone"
    request = db.session.get(DataSubjectRequest, delivery.request_id)
    body = json.dumps(body_for(request, delivery.url, delivery.status)).encode()
    headers = {"Content-Type": "application/json", **signing.get().headers(body)}
    delivery.attempts += 1
    try:
        response = requests.post(
            delivery.url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
        )
        if not 200 <= response.status_code < 300:
            raise CallbackFailed(f"HTTP {response.status_code}")
    except (requests.RequestException, CallbackFailed) as exc:
        delivery.last_error = (
            str(exc)[:200] if isinstance(exc, CallbackFailed) else type(exc).__name__
        )
        final = self.request.retries >= self.max_retries
        if final:
            delivery.state = "failed"
        db.session.commit()
        logger.warning(
            "callback %s for request %s failed (%s, attempt %s)",
            delivery.id,
            request.public_id,
            delivery.last_error,
            delivery.attempts,
        )
        if final:
            return "failed"
        countdown = (
            current_app.config.get("CALLBACK_RETRY_BASE_SECONDS", 2) * 2**self.request.retries
        )
        raise self.retry(countdown=countdown) from None
    delivery.state = "delivered"
    delivery.delivered_at = utcnow()
    delivery.last_error = None
    db.session.commit()
    return "delivered"
