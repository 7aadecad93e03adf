"""The beat schedule: which task runs when, by task name."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "audit-verify-daily": {
        "task": "audit.verify_chains",
        "schedule": crontab(hour=3, minute=15),
    },
    "dsr-resume": {
        "task": "dsr.resume",
        "schedule": crontab(minute="*/5"),
    },
    "dsr-expire-unverified-hourly": {
        "task": "dsr.expire_unverified",
        "schedule": crontab(minute=25),
    },
    "inventory-purge-staged-hourly": {
        "task": "inventory.purge_staged",
        "schedule": crontab(minute=40),
    },
    "dsr-remind-daily": {
        "task": "dsr.remind",
        "schedule": crontab(hour=7, minute=0),
    },
}


def beat_schedule(config) -> dict:
    """BEAT_SCHEDULE plus the jobs whose time is configured: the daily backup (with its
    retention) at PRIVACY_BACKUP_HOUR, and a recovery drill on the first of each month."""
    hour = config.get("BACKUP_HOUR", 2)
    return {
        **BEAT_SCHEDULE,
        "backups-daily": {"task": "backups.daily", "schedule": crontab(hour=hour, minute=0)},
        "backups-drill-monthly": {
            "task": "backups.drill",
            "schedule": crontab(day_of_month=1, hour=(hour + 2) % 24, minute=30),
        },
    }
