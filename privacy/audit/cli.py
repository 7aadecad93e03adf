"""`flask audit verify`: check every hash chain; exit non-zero on any defect."""

from __future__ import annotations

import sys

import click

from privacy.audit import services


@click.group()
def audit():
    """Audit log tools."""


@audit.command("verify")
def verify():
    """Report edited, inserted or deleted audit rows; exit 1 if any."""
    problems = 0
    for message in services.verify():
        problems += 1
        click.echo(message, err=True)
    if problems:
        click.echo(f"audit log: {problems} problem(s) found", err=True)
        sys.exit(1)
    click.echo("audit log: all chains intact")
