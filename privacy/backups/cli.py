"""`flask backups ...`: run, list, verify retention, lifecycle rules, restore, drill."""

from __future__ import annotations

import json
import sys
import time

import click

from privacy.audit import services as audit
from privacy.backups import services
from privacy.backups.stream import BackupCorrupt
from privacy.storage import StorageError


class Meter:
    """Progress on stderr for long runs: bytes done and rate, at most once a second."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet = label, quiet
        self.start = self.last = time.monotonic()
        self.done = 0

    def __call__(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.quiet or now - self.last < 1:
            return
        self.last = now
        self._print()

    def _print(self, end: str = "\r") -> None:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        mib = self.done / 1048576
        sys.stderr.write(f"{self.label}: {mib:,.1f} MiB, {mib / elapsed:,.1f} MiB/s{end}")
        sys.stderr.flush()

    def finish(self) -> None:
        if not self.quiet and self.done:
            self._print(end="\n")


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from None


@click.group()
def backups():
    """Encrypted backups: take, list, check retention, restore, drill."""


@backups.command("run")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def run(quiet: bool):
    """Take a backup now; prints the new backup's id (exit 1 if it failed)."""
    meter = Meter("backup", quiet)
    result = services.run_backup(trigger="cli", actor=audit.SYSTEM, progress=meter)
    meter.finish()
    if result.status != "succeeded":
        raise click.ClickException(f"The backup failed: {result.reason}")
    click.echo(result.key)


@backups.command("list")
def list_():
    """Complete backups, oldest first, one JSON object a line."""
    try:
        found = services.manifests()
    except (StorageError, ValueError) as exc:
        _fail(exc)
    for manifest in found:
        click.echo(
            json.dumps(
                {
                    "id": manifest.id,
                    "created_at": manifest.created_at.isoformat(),
                    "database": manifest.database,
                    "size": manifest.size,
                    "key_id": manifest.key_id,
                    "rows": sum(manifest.row_counts.values()),
                }
            )
        )


@backups.command("verify-retention")
def verify_retention():
    """Report backups kept too long (over 30 days, or over 90) and stray parts; exit 1 if any."""
    try:
        report = services.enforce_retention(dry_run=True)
    except StorageError as exc:
        _fail(exc)
    for violation in report.violations:
        click.echo(violation)
    if report.violations:
        sys.exit(1)
    click.echo("retention holds: no backup older than 30 days")


@backups.command("lifecycle")
def lifecycle():
    """Print the S3 lifecycle rules that purge backups after 90 days at the latest."""
    click.echo(json.dumps(services.lifecycle_rules(), indent=2))


@backups.command("restore")
@click.argument("backup_id")
@click.option("--target", required=True, help="Database URL to restore into.")
@click.option("--force", is_flag=True, help="Replace a target that is not empty.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def restore(backup_id: str, target: str, force: bool, quiet: bool):
    """Restore BACKUP_ID into --target, then replay the erasures made since the backup."""
    meter = Meter("restore", quiet)
    try:
        result = services.restore(
            backup_id, target=target, force=force, progress=meter, actor="cli"
        )
    except (services.BackupError, BackupCorrupt, StorageError) as exc:
        _fail(exc)
    finally:
        meter.finish()
    click.echo(
        json.dumps({"backup": result["backup"], "replayed_erasures": result["replayed_erasures"]})
    )


@backups.command("drill")
def drill():
    """Restore the newest backup into a scratch database and check it; exit 1 if it fails."""
    report = services.drill(actor=audit.SYSTEM)
    click.echo(
        json.dumps(
            {
                "drill": str(report.public_id),
                "status": report.status,
                "backup": report.backup_id,
                "seconds": report.duration_seconds,
                "checks": report.checks,
            },
            indent=2,
        )
    )
    if report.status != "passed":
        sys.exit(1)
