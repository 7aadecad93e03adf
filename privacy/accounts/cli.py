"""`flask accounts ...`: create an account with its first admin and API token."""

from __future__ import annotations

import json

import click

from privacy.accounts import services
from privacy.accounts.models import REGIONS
from privacy.database import begin_write
from privacy.errors import AppError
from privacy.extensions import db


@click.group()
def accounts():
    """Manage customer accounts."""


@accounts.command("create")
@click.argument("name")
@click.option("--admin", "admin_email", required=True, help="E-mail of the first admin.")
@click.option("--admin-name", default=None, help="Display name of the first admin.")
@click.option("--region", type=click.Choice(REGIONS), default="eu", show_default=True)
def create(name: str, admin_email: str, admin_name: str | None, region: str):
    """Create account NAME; print its id and a first admin API token (shown once) as JSON."""
    try:
        begin_write()  # on SQLite, hold the write lock from the start (the service may run)
        account, member, token = services.create_account(
            name=name,
            region=region,
            admin_email=admin_email,
            admin_name=admin_name,
            actor="cli",
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        details = exc.data.get("errors")
        raise click.ClickException(
            f"{exc.data['message']} {json.dumps(details) if details else ''}".strip()
        ) from None
    click.echo(
        json.dumps(
            {
                "account_id": str(account.public_id),
                "name": account.name,
                "region": account.region,
                "admin_member_id": str(member.public_id),
                "api_token": token,
            }
        )
    )
