"""Worker entry point: `celery -A workers.celery_app worker` (and `beat`).

The tasks are every domain's `tasks` module (privacy/<domain>/tasks.py), registered when the
app is made (privacy.jobs.celery_init_app)."""

from privacy import create_app
from privacy import links
from workers import schedule
from workers import signals

flask_app = create_app()
try:
    # The worker mails links and sends callbacks with results URLs: without the service's
    # address they would point nowhere, so it does not start.
    links.base_url(flask_app.config)
except links.MissingBaseURL as exc:
    raise SystemExit(f"The worker cannot start: {exc}") from None
celery_app = flask_app.extensions["celery"]
celery_app.conf.beat_schedule = schedule.beat_schedule(flask_app.config)
signals.connect(flask_app)
