"""The worker process: Celery app, beat schedule, fork-safety signals."""
