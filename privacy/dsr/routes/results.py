"""The pages behind a results link (privacy.dsr.results): the documents offered, every
download audited, an expired link a clear page."""

from __future__ import annotations

from flask import Blueprint
from flask import Response

from privacy.accounts.models import Account
from privacy.auth.permissions import public
from privacy.database import begin_write
from privacy.database import utcnow
from privacy.dsr import package
from privacy.dsr import results
from privacy.extensions import db
from privacy.pages import render_page

bp = Blueprint("dsr_results", __name__)


def _gone(message: str):
    return render_page("dsr/results_gone.html", 404, message=message)


@bp.get(f"{results.PATH}<secret>")
@public
def show(secret: str):
    request = results.find(secret)
    if request is None:
        return _gone("This link is not valid. Ask for the documents again.")
    if request.download_expires_at <= utcnow():
        return _gone(
            "This link expired on "
            + request.download_expires_at.strftime("%d %B %Y")
            + ". Ask the service you made the request to for a new one."
        )
    account = db.session.get(Account, request.account_id)
    return render_page(
        "dsr/results.html",
        request=request,
        account=account,
        files=results.FILES[request.kind],
        secret=secret,
    )


@bp.get(f"{results.PATH}<secret>/<name>")
@public
def download(secret: str, name: str):
    request = results.find(secret)
    if request is None or name not in results.FILES[request.kind]:
        return _gone("This link is not valid. Ask for the documents again.")
    if request.download_expires_at <= utcnow():
        return _gone(
            "This link has expired. Ask the service you made the request to for a new one."
        )
    account = db.session.get(Account, request.account_id)
    data = package.load_or_render(account, request, name)
    # The write lock (SQLite) for the audit row only, not for a first download's render.
    begin_write()
    results.record_download(account, request, name, actor=results.ACTOR)
    db.session.commit()
    response = Response(data, mimetype=results.FILES[request.kind][name])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response
