"""The operators' backups page: recent backup runs, restores and recovery drills."""

from __future__ import annotations

from flask import Blueprint

from privacy.auth.permissions import OPERATOR
from privacy.auth.permissions import page
from privacy.backups import services
from privacy.pages import render_page

bp = Blueprint("backup_pages", __name__)

RUNS_SHOWN = 30
DRILLS_SHOWN = 12
RESTORES_SHOWN = 20


@bp.get("/ops/backups")
@page(OPERATOR)
def ops():
    return render_page(
        "backups/ops.html",
        runs=services.latest_runs(RUNS_SHOWN),
        drills=services.latest_drills(DRILLS_SHOWN),
        restores=services.latest_restores(RESTORES_SHOWN),
        keep_days=services.KEEP_DAYS,
        purge_days=services.PURGE_DAYS,
    )
