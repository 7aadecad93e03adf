"""Worker entry point: `celery -A workers.celery_app worker` (and `beat`)."""

from privacy import create_app
from privacy import links
from workers import schedule
from workers import signals  # noqa: F401 - registers the fork-safety handlers

flask_app = create_app()
try:
    # The worker mails links and sends callbacks with results URLs: without the service's
    # address they would point nowhere, so it does not start.
    links.base_url(flask_app.config)
except links.MissingBaseURL as exc:
    raise SystemExit(f"The worker cannot start: {exc}") from None
celery_app = flask_app.extensions["celery"]
celery_app.conf.beat_schedule = schedule.beat_schedule(flask_app.config)
# Task modules of every domain; listed here because privacy/ never imports workers/.
celery_app.conf.imports = schedule.TASK_MODULES
