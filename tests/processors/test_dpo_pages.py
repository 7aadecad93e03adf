"""The register's pages: the public list, and the DPO's pages (only the DPO's), with inline
validation errors, document uploads within 20 MB, activation and objections."""

from __future__ import annotations

import io
import os
import re

import pytest
from pypdf import PdfWriter
from sqlalchemy import select

from privacy.audit.models import AuditEvent
from privacy.extensions import db
from privacy.processors import notices
from privacy.processors import services
from privacy.processors.models import Objection
from privacy.processors.models import SubProcessor
from privacy.support import services as support
from tests.auth.conftest import browser  # noqa: F401 - fixture
from tests.auth.conftest import links_in
from tests.auth.conftest import messages
from tests.auth.conftest import new_browser  # noqa: F401 - fixture
from tests.processors.test_effective import backdate_account
from tests.processors.test_register import make
from tests.processors.test_register import pdf_bytes
from tests.processors.test_register import register  # noqa: F401 - fixture
from tests.processors.test_register import with_dpa

DPO_EMAIL = "dana@platform.example"
SUPPORT_EMAIL = "olga@platform.example"
HTML = {"Accept": "text/html"}


def sign_in(person, mailbox, email: str):
    before = len(messages(mailbox)) if mailbox.exists() else 0
    person.request_link(email)
    (link,) = links_in(messages(mailbox)[before])
    assert person.use_link(link).status_code in (302, 303)
    return person


@pytest.fixture
def dpo(register, browser, outbox):  # noqa: F811 - fixtures
    support.create_operator(email=DPO_EMAIL, name="Dana DPO", role="dpo", actor="test")
    db.session.commit()
    return sign_in(browser, outbox, DPO_EMAIL)


def text(response) -> str:
    return response.get_data(as_text=True)


def visible(response) -> str:
    """The page's text as a reader sees it: no tags, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", text(response)).split()).replace(" ,", ",")


def detail_url(sp) -> str:
    return f"/dpo/subprocessors/view?id={sp.public_id}"


def post(person, path: str, data: dict, sp=None, **kwargs):
    page = detail_url(sp) if sp is not None else "/dpo/subprocessors/new"
    return person.post(path, data, page=page, headers=HTML, **kwargs)


def form(**overrides) -> dict:
    return {
        "legal_name": "Hosting GmbH",
        "address": "Musterstraße 1, 10115 Berlin, Germany",
        "contact": "privacy@hosting.example",
        "website": "https://hosting.example",
        "purpose": "hosting and storage",
        "data_categories": "contact data\nusage data",
        "subject_categories": "customers' users",
        "locations": "DE, US",
        "services": "Berlin data centre",
        "review_due": "",
        **overrides,
    }


def big_pdf(size: int) -> bytes:
    """A readable PDF of at least `size` bytes (an incompressible attachment)."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_attachment("padding.bin", os.urandom(size))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_the_dpo_sees_every_register_page(dpo):
    sp = make(["DE"])
    sp.example = True
    db.session.commit()

    for path in (
        "/dpo/subprocessors",
        "/dpo/subprocessors/dashboard",
        "/dpo/subprocessors/pending",
        "/dpo/subprocessors/objections",
        "/dpo/subprocessors/new",
        detail_url(sp),
        f"/dpo/subprocessors/edit?id={sp.public_id}",
    ):
        response = dpo.get(path)
        assert response.status_code == 200, (path, text(response)[:300])
    listing = text(dpo.get("/dpo/subprocessors"))
    assert "Hosting GmbH" in listing and "example data" in listing and "No DPA on file." in listing
    assert "example data" in text(dpo.get(detail_url(sp)))
    assert dpo.get("/dpo/subprocessors/view?id=not-a-uuid", headers=HTML).status_code == 404


def test_support_operators_and_members_get_403(register, tenant, new_browser, outbox):  # noqa: F811
    sp = make(["DE"])
    db.session.commit()
    support.create_operator(email=SUPPORT_EMAIL, name="Olga", role="support", actor="test")
    db.session.commit()
    operator = sign_in(new_browser(), outbox, SUPPORT_EMAIL)
    admin = sign_in(new_browser(), outbox, "admin@acme.example")

    for who, home in ((operator, "/support"), (admin, "/members")):
        for path in ("/dpo/subprocessors", detail_url(sp), "/dpo/subprocessors/objections"):
            assert who.get(path).status_code == 403, path
        refused = who.post("/dpo/subprocessors/retire", {"id": str(sp.public_id)}, page=home)
        assert refused.status_code == 403
    assert new_browser().get("/dpo/subprocessors").headers["Location"].startswith("/auth/login")


def test_a_bad_country_code_is_422_with_the_message_next_to_the_field(dpo):
    refused = post(dpo, "/dpo/subprocessors/new", form(locations="DE, XX"))

    assert refused.status_code == 422
    page = text(refused)
    assert "XX is not an ISO 3166-1 country code." in page
    assert 'id="locations-error"' in page and 'aria-describedby="locations-error"' in page
    assert 'value="Hosting GmbH"' in page and 'value="DE, XX"' in page  # the values stay
    assert db.session.scalar(select(SubProcessor)) is None

    created = post(dpo, "/dpo/subprocessors/new", form())
    assert created.status_code == 303
    sp = db.session.scalar(select(SubProcessor))
    assert created.headers["Location"] == f"{detail_url(sp)}&done=created"
    assert sp.locations == ["DE", "US"] and sp.data_categories == ["contact data", "usage data"]
    assert sp.status == "draft" and not sp.example


def test_edits_are_kept_in_the_history_and_a_duplicate_name_is_409(dpo):
    sp = make(["DE"])
    make(["FR"], legal_name="Other SAS")
    db.session.commit()

    saved = post(
        dpo,
        "/dpo/subprocessors/edit",
        form(id=str(sp.public_id), purpose="backups", locations="DE"),
        sp,
    )
    assert saved.status_code == 303
    page = text(dpo.get(detail_url(sp)))
    assert "hosting and storage" in page and "backups" in page  # before and after
    duplicate = post(
        dpo, "/dpo/subprocessors/edit", form(id=str(sp.public_id), legal_name="other sas"), sp
    )
    assert duplicate.status_code == 409
    assert "exists already" in text(duplicate) and 'value="other sas"' in text(duplicate)


def test_scc_module_5_is_422(dpo):
    sp = make(["US"])
    db.session.commit()
    refused = post(
        dpo,
        "/dpo/subprocessors/safeguards",
        {
            "id": str(sp.public_id),
            "country": "US",
            "kind": "scc",
            "scc_module": "5",
            "signed_on": "2026-01-10",
        },
        sp,
    )
    assert refused.status_code == 422
    assert "SCC modules are 1 to 4" in text(refused)
    assert 'id="sg-scc_module-error"' in text(refused)
    db.session.expire_all()
    assert sp.safeguards == []


def test_a_safeguard_with_its_pdf_is_stored_and_its_download_audited(dpo):
    sp = make(["US"])
    db.session.commit()
    added = post(
        dpo,
        "/dpo/subprocessors/safeguards",
        {
            "id": str(sp.public_id),
            "country": "us",
            "kind": "scc",
            "scc_module": "3",
            "signed_on": "2026-01-10",
            "document": (io.BytesIO(pdf_bytes()), "scc.pdf"),
        },
        sp,
    )
    assert added.status_code == 303, text(added)
    db.session.expire_all()
    (safeguard,) = sp.safeguards
    assert safeguard.country == "US" and safeguard.document_key

    downloaded = dpo.get(f"/dpo/subprocessors/document?id={safeguard.public_id}")
    assert downloaded.status_code == 200 and downloaded.mimetype == "application/pdf"
    assert downloaded.data.startswith(b"%PDF-")
    assert downloaded.headers["Cache-Control"] == "no-store"
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "subprocessor.document_downloaded")
    )
    assert event.object_id == str(sp.public_id) and event.actor.startswith("operator:")
    assert event.data == {"document": str(safeguard.public_id), "kind": "scc"}


def test_a_non_pdf_upload_is_422(dpo):
    sp = make(["DE"])
    db.session.commit()
    refused = post(
        dpo,
        "/dpo/subprocessors/dpas",
        {
            "id": str(sp.public_id),
            "version": "2026-01",
            "signed_on": "2026-01-10",
            "document": (io.BytesIO(b"PK\x03\x04 a zip file"), "dpa.pdf"),
        },
        sp,
    )
    assert refused.status_code == 422
    assert "This file is not a PDF." in text(refused) and 'value="2026-01"' in text(refused)
    db.session.expire_all()
    assert sp.dpas == []


def test_a_dpa_above_the_app_wide_body_limit_is_accepted(dpo, app):
    """The upload limit is raised before the CSRF check reads the form."""
    sp = make(["DE"])
    db.session.commit()
    document = big_pdf(app.config["MAX_CONTENT_LENGTH"] + 512 * 1024)
    added = post(
        dpo,
        "/dpo/subprocessors/dpas",
        {
            "id": str(sp.public_id),
            "version": "2026-01",
            "signed_on": "2026-01-10",
            "document": (io.BytesIO(document), "dpa.pdf"),
        },
        sp,
    )
    assert added.status_code == 303, text(added)[:500]
    db.session.expire_all()
    assert services.document(sp.dpas[0].document_key) == document


def test_a_30_mb_upload_is_a_413_page(dpo):
    sp = make(["DE"])
    db.session.commit()
    refused = post(
        dpo,
        "/dpo/subprocessors/dpas",
        {
            "id": str(sp.public_id),
            "version": "2026-01",
            "signed_on": "2026-01-10",
            "document": (io.BytesIO(b"%PDF-1.7\n" + b"0" * (30 * 1024 * 1024)), "dpa.pdf"),
        },
        sp,
    )
    assert refused.status_code == 413
    assert refused.mimetype == "text/html" and "A document is at most 20 MB." in text(refused)
    db.session.expire_all()
    assert sp.dpas == []


def test_activation_blocked_shows_what_is_missing_then_activate_and_retire(dpo):
    sp = make(["US"])
    db.session.commit()

    refused = post(dpo, "/dpo/subprocessors/activate", {"id": str(sp.public_id)}, sp)
    assert refused.status_code == 409
    page = text(refused)
    assert "Missing before activation" in page and "No DPA on file." in page
    assert "US: not certified under the EU-US Data Privacy Framework" in page
    db.session.expire_all()
    assert sp.status == "draft"

    with_dpa(sp)
    services.add_safeguard(
        sp, country="US", kind="scc", scc_module=3, signed_on="2026-01-10", actor="test"
    )
    db.session.commit()
    activated = post(dpo, "/dpo/subprocessors/activate", {"id": str(sp.public_id)}, sp)
    assert activated.status_code == 303
    db.session.expire_all()
    assert sp.status == "active"
    pending = text(dpo.get("/dpo/subprocessors/pending"))
    assert "Hosting GmbH" in pending and "added" in pending
    public = text(dpo.get("/subprocessors"))
    assert "United States" in public and "SCC module 3" in public

    retired = post(dpo, "/dpo/subprocessors/retire", {"id": str(sp.public_id)}, sp)
    assert retired.status_code == 303
    db.session.expire_all()
    assert sp.status == "retired"
    assert "Hosting GmbH" not in text(dpo.get("/subprocessors"))


def test_a_draft_replaces_an_active_one(dpo):
    old = with_dpa(make(["DE"], legal_name="Old GmbH"))
    services.activate(old, actor="test")
    new = with_dpa(make(["FR"], legal_name="New SAS"))
    db.session.commit()

    replaced = post(
        dpo,
        "/dpo/subprocessors/activate",
        {"id": str(new.public_id), "replaces": str(old.public_id)},
        new,
    )
    assert replaced.status_code == 303
    db.session.expire_all()
    assert (old.status, new.status) == ("retired", "active")
    assert "replaced by New SAS" in text(dpo.get(detail_url(old)))


def test_the_dpo_resolves_an_objection(dpo, tenant):
    backdate_account(tenant.account)
    sp = with_dpa(make(["DE"]))
    version = services.activate(sp, actor="test")
    objection = notices.object_to(tenant.account, version, reason="Our works council", actor="m")
    db.session.commit()

    page = text(dpo.get("/dpo/subprocessors/objections"))
    assert "Acme GmbH" in page and "Our works council" in page
    board = visible(dpo.get("/dpo/subprocessors/dashboard"))
    assert "1 open objection," in board and "1 change in the notice period" in board

    data = {"id": str(objection.public_id), "outcome": "alternative", "resolution": ""}
    refused = post(dpo, "/dpo/subprocessors/objections/resolve", data)
    assert refused.status_code == 422 and "Describe the outcome." in text(refused)
    data["resolution"] = "Their data stays with the previous host."
    resolved = post(dpo, "/dpo/subprocessors/objections/resolve", data)
    assert resolved.status_code == 303

    db.session.expire_all()
    objection = db.session.scalar(select(Objection))
    assert objection.state == "resolved" and objection.outcome == "alternative"
    assert objection.resolved_by.startswith("operator:")
    page = text(dpo.get("/dpo/subprocessors/objections"))
    assert "No open objections." in page and "Their data stays with the previous host." in page


def test_the_public_page_lists_active_sub_processors_only(register, client):  # noqa: F811
    active = with_dpa(make(["DE", "US"], legal_name="Cloud GmbH", dpf_certified=True))
    services.activate(active, actor="test")
    active.example = True
    make(["DE"], legal_name="Draft AG")
    db.session.commit()

    response = client.get("/subprocessors")
    assert response.status_code == 200
    page = text(response)
    assert "Cloud GmbH" in page and "Draft AG" not in page
    assert re.search(r"Germany</strong> \(DE\): Within the EU/EEA", page)
    assert "United States</strong> (US): Adequacy decision" in page
    assert "EU-US Data Privacy Framework" in page and "example data" in page
    assert 'href="/subprocessors/feed"' in page and 'href="/api/v1/public/subprocessors"' in page
