"""Inventory housekeeping in the worker: staged rows of imports whose process died."""

from __future__ import annotations

import logging

from celery import shared_task

from privacy.inventory import services

logger = logging.getLogger(__name__)


@shared_task(name="inventory.purge_staged", acks_late=True)
def purge_staged() -> int:
    """Beat, hourly: delete staged import rows older than services.STAGED_MAX_AGE. They are
    encrypted and were never the account's data, but personal data all the same."""
    deleted = services.purge_staged()
    if deleted:
        logger.info("purged %d staged rows of unfinished imports", deleted)
    return deleted
