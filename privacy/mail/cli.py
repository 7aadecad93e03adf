"""`flask mail`: the queued messages the worker could not send, listed, discarded or queued
again."""

from __future__ import annotations

import json
import logging

import click
from sqlalchemy import select

from privacy import jobs
from privacy.database import begin_write
from privacy.extensions import db
from privacy.mail import FAILED
from privacy.mail import PENDING
from privacy.mail import QueuedMail

logger = logging.getLogger(__name__)


@click.group("mail")
def mail() -> None:
    """Queued mail the worker could not send."""


@mail.command("failed")
def failed_command() -> None:
    """List the messages that failed for good, one JSON object a line (ids, never addresses)."""
    for queued in db.session.scalars(
        select(QueuedMail).where(QueuedMail.state == FAILED).order_by(QueuedMail.id)
    ):
        row = {
            "id": queued.id,
            "queued_at": queued.created_at.isoformat(),
            "attempts": queued.attempts,
            "error": queued.last_error,
        }
        click.echo(json.dumps(row))


@mail.command("discard")
@click.argument("mail_id", type=int)
def discard_command(mail_id: int) -> None:
    """Delete a message that failed for good, with the personal data it holds (once it is
    clear it will not be sent)."""
    begin_write()
    queued = db.session.get(QueuedMail, mail_id)
    if queued is None or queued.state != FAILED:
        raise click.ClickException(f"no failed message with id {mail_id}")
    db.session.delete(queued)
    db.session.commit()
    logger.info("queued mail %s discarded", mail_id)
    click.echo(json.dumps({"id": mail_id, "state": "discarded"}))


@mail.command("retry")
@click.argument("mail_id", type=int)
def retry_command(mail_id: int) -> None:
    """Queue a message that failed for good again, with a fresh count of tries (once the
    mail server or the address is fixed)."""
    begin_write()
    queued = db.session.get(QueuedMail, mail_id)
    if queued is None or queued.state != FAILED:
        raise click.ClickException(f"no failed message with id {mail_id}")
    queued.state, queued.attempts, queued.last_error = PENDING, 0, None
    jobs.after_commit("mail.send_queued", queued.id)
    db.session.commit()
    click.echo(json.dumps({"id": mail_id, "state": PENDING}))
