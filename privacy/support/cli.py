"""`flask operators ...`: the platform's support staff and DPO (not customer members)."""

from __future__ import annotations

import json

import click

from privacy.database import begin_write
from privacy.errors import AppError
from privacy.extensions import db
from privacy.support import services
from privacy.support.models import OPERATOR_ROLES
from privacy.validation import normalize_email


@click.group()
def operators():
    """Manage platform operators (support staff, DPO)."""


@operators.command("create")
@click.argument("email")
@click.option("--name", default=None, help="Display name.")
@click.option("--role", type=click.Choice(OPERATOR_ROLES), default="support", show_default=True)
def create(email: str, name: str | None, role: str):
    """Create an operator who signs in by e-mail link; prints its id as JSON."""
    try:
        begin_write()  # on SQLite, hold the write lock from the start (the service may run)
        operator = services.create_operator(email=email, name=name, role=role, actor="cli")
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        details = exc.data.get("errors")
        raise click.ClickException(
            f"{exc.data['message']} {json.dumps(details) if details else ''}".strip()
        ) from None
    click.echo(json.dumps({"operator_id": str(operator.public_id), "role": operator.role}))


@operators.command("disable")
@click.argument("email")
def disable(email: str):
    """Disable an operator: their sessions end and they can no longer sign in."""
    begin_write()
    try:
        operator = services.find_operator(normalize_email(email))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if operator is None:
        raise click.ClickException("No operator has this e-mail.")
    services.disable_operator(operator, actor="cli")
    db.session.commit()
    click.echo(json.dumps({"operator_id": str(operator.public_id), "disabled": True}))


@operators.command("list")
def list_():
    """Active operators as JSON lines (id, role); no names or e-mails on the terminal log."""
    for operator in services.list_operators():
        click.echo(json.dumps({"operator_id": str(operator.public_id), "role": operator.role}))
