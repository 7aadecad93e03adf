"""Daily background check of the audit chains."""

from __future__ import annotations

import logging

from celery import shared_task

from privacy.audit import services

logger = logging.getLogger(__name__)


@shared_task(name="audit.verify_chains", acks_late=True)
def verify_chains() -> int:
    """Verify every chain; log each defect (ids and positions only) and return their number."""
    problems = 0
    for message in services.verify():
        problems += 1
        logger.error("audit chain defect: %s", message)
    if not problems:
        logger.info("audit chains intact")
    return problems
