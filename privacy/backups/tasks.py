"""Beat jobs: the daily backup with retention, and the monthly recovery drill."""

from __future__ import annotations

import logging

from celery import shared_task

from privacy.audit import services as audit
from privacy.backups import services

logger = logging.getLogger(__name__)


@shared_task(name="backups.daily", acks_late=True)
def daily() -> str:
    """Take the day's backup, then enforce retention (30 days kept, none past 90)."""
    run = services.run_backup(trigger="schedule", actor=audit.SYSTEM)
    if run.status != "succeeded":
        logger.error("backup %s failed", run.public_id)
    retention = services.enforce_retention()
    logger.info(
        "backup %s %s; %d old backup(s) deleted", run.public_id, run.status, len(retention.deleted)
    )
    return run.status


@shared_task(name="backups.drill", acks_late=True)
def drill() -> str:
    report = services.drill(actor=audit.SYSTEM)
    logger.info(
        "recovery drill %s %s in %.1fs", report.public_id, report.status, report.duration_seconds
    )
    return report.status
