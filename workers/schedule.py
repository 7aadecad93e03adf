"""The beat schedule and the task modules the worker loads."""

from celery.schedules import crontab

TASK_MODULES = (
    "privacy.mail",
    "privacy.audit.tasks",
    "privacy.dsr.tasks",
    "privacy.dsr.verification",
    "privacy.dsr.callbacks",
    "privacy.dsr.reminders",
)

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
    "dsr-remind-daily": {
        "task": "dsr.remind",
        "schedule": crontab(hour=7, minute=0),
    },
}
