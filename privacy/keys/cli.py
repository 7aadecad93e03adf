"""`flask keys new|rotate|status`: data-key ring maintenance."""

from __future__ import annotations

import click

from privacy.crypto import new_key_entry
from privacy.keys import services


@click.group()
def keys():
    """Data-key ring maintenance."""


@keys.command("new")
def new():
    """Print a fresh key entry to append (last) to PRIVACY_DATA_KEYS."""
    click.echo(new_key_entry())


@keys.command("status")
def status():
    """How many rows per table are not yet under the newest key."""
    for model in services.ENCRYPTED_MODELS:
        click.echo(f"{model.__tablename__}: {services.pending(model)} row(s) under older keys")


@keys.command("rotate")
@click.option("--batch-size", default=500, show_default=True)
def rotate(batch_size: int):
    """Re-encrypt every row under the newest key. Safe to interrupt and run again."""

    def progress(table: str, count: int) -> None:
        click.echo(f"{table}: re-encrypted {count}", err=True)

    total = services.rotate(batch_size=batch_size, progress=progress)
    click.echo(f"rotation complete: {total} row(s) re-encrypted")
