"""Document downloads are cheap to repeat: a PDF is rendered once per content, and each
account's downloads are throttled."""

from __future__ import annotations

import pytest

from privacy import pdf
from privacy.accounts.models import Account
from privacy.extensions import db
from privacy.processors import documents
from privacy.processors.routes.documents import DOWNLOAD_LIMIT
from tests.processors.test_documents import add_register

ANNEX = "/api/v1/documents/subprocessor-annex.pdf"
RECORD = "/api/v1/documents/record-of-processing.pdf"


@pytest.fixture
def renders(monkeypatch):
    documents._RENDERED.clear()
    counted = []
    real = pdf.render_pdf

    def counting(template, **context):
        counted.append(template)
        return real(template, **context)

    monkeypatch.setattr(pdf, "render_pdf", counting)
    return counted


def test_the_same_content_is_rendered_once_and_a_change_renders_anew(client, tenant, renders):
    add_register()
    first = client.get(ANNEX, headers=tenant.headers)
    again = client.get(ANNEX, headers=tenant.headers)
    assert first.status_code == again.status_code == 200
    assert again.data == first.data
    assert client.get(RECORD, headers=tenant.headers).status_code == 200
    assert renders == ["processors/pdf/annex.html", "processors/pdf/record.html"]

    db.session.get(Account, tenant.account.id).name = "Acme Europe GmbH"
    db.session.commit()
    changed = client.get(ANNEX, headers=tenant.headers)
    assert changed.status_code == 200 and changed.data != first.data
    assert renders.count("processors/pdf/annex.html") == 2


def test_downloads_beyond_the_limit_are_429_with_retry_after(client, tenant, other_tenant, renders):
    allowed = int(DOWNLOAD_LIMIT.split()[0])
    for _ in range(allowed):
        assert client.get(ANNEX, headers=tenant.headers).status_code == 200
    refused = client.get(RECORD, headers=tenant.headers)
    assert refused.status_code == 429
    assert refused.json["code"] == 429 and "Retry-After" in refused.headers
    # One account's downloads do not use up another's.
    assert client.get(ANNEX, headers=other_tenant.headers).status_code == 200
