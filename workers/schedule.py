"""The beat schedule and the task modules the worker loads."""

from celery.schedules import crontab

TASK_MODULES = (
    "privacy.mail",
    "privacy.audit.tasks",
)

BEAT_SCHEDULE = {
    "audit-verify-daily": {
        "task": "audit.verify_chains",
        "schedule": crontab(hour=3, minute=15),
    },
}
