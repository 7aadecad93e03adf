"""`flask processors ...`: the sub-processor register from the command line."""

from __future__ import annotations

import click


@click.group()
def processors():
    """Manage the sub-processor register."""
