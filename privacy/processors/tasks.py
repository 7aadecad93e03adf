"""The sub-processor register's work in the worker: change notices POSTed to customers'
webhooks (privacy.processors.webhooks)."""

from __future__ import annotations

from celery import shared_task

from privacy.processors import webhooks


@shared_task(
    name="processors.deliver_webhook",
    bind=True,
    max_retries=None,  # the tries are counted on the notice (outbound.MAX_ATTEMPTS)
    acks_late=True,
    soft_time_limit=60,  # bounds a receiver that trickles its headers (prefork pools)
    time_limit=90,
)
def deliver_webhook(self, notice_id: int) -> str:
    """One try of a notice's delivery to the account's webhook (webhooks.deliver)."""
    return webhooks.deliver(self, notice_id)
