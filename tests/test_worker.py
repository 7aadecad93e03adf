"""A real Celery worker process runs tasks from the configured broker: the embedded
filesystem broker by default, Redis when PRIVACY_TEST_BROKER_URL names it."""

from __future__ import annotations

import email
import os
import time

import pytest

from privacy import config
from privacy import create_app
from privacy.paths import ROOT
from tests import helpers
from tests.conftest import app_config
from tests.conftest import database_url
from workers import schedule


@pytest.mark.integration
def test_worker_process_delivers_a_queued_mail(app, tmp_path, monkeypatch):
    broker = os.environ.get("PRIVACY_TEST_BROKER_URL", "")
    env = helpers.service_env(
        tmp_path / "instance", PRIVACY_DATABASE_URL=database_url(), PRIVACY_BROKER_URL=broker
    )
    # The producer reads the same settings the worker does.
    for name, value in env.items():
        if name.startswith("PRIVACY_"):
            monkeypatch.setenv(name, value)
    celery_config = config.load(ROOT)["CELERY"]
    producer = create_app(app_config(CELERY=celery_config))
    outbox = tmp_path / "instance" / "outbox"

    args = [
        str(helpers.BIN / "celery"),
        "--app",
        "workers.celery_app",
        "worker",
        "--pool",
        "solo",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
    ]
    with helpers.running(args, env, tmp_path / "worker.log"):
        with producer.app_context():
            producer.extensions["celery"].send_task(
                "mail.send", args=["someone@example.org", "Queued hello", "Body from the queue"]
            )
        deadline = time.monotonic() + 60
        while not (outbox.exists() and list(outbox.glob("*.eml"))):
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.2)
    app.extensions["celery"].set_default()
    (message_file,) = outbox.glob("*.eml")
    message = email.message_from_bytes(message_file.read_bytes())
    assert message["Subject"] == "Queued hello"
    assert message["To"] == "someone@example.org"
    worker_log = (tmp_path / "worker.log").read_text()
    assert "someone@example.org" not in worker_log


def test_every_scheduled_task_is_registered_by_autodiscovery(app):
    """No list of task modules: every domain's `tasks` module is found in every process."""
    registered = set(app.extensions["celery"].tasks)
    scheduled = {job["task"] for job in schedule.beat_schedule(app.config).values()}
    assert scheduled <= registered
    assert {"mail.send", "mail.send_queued"} <= registered
