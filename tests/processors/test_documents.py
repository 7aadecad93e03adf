"""The account's documents: the DPA annex and the Art. 30(2) record, as JSON and PDF (text in
any script, fonts embedded), their routes' permissions, and audited downloads."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import update

from privacy.database import utcnow
from privacy.extensions import db
from privacy.processors import documents
from privacy.processors import services
from privacy.processors.models import ListVersion

SCC = "SCC module 3, Commission Implementing Decision (EU) 2021/914"
DPF = "Commission Implementing Decision (EU) 2023/1795 (EU-US Data Privacy Framework)"
HOSTING = {
    "legal_name": "Nordwolke Hosting AG",
    "address": "Europaallee 41, 8004 Zürich, Switzerland",
    "contact": "privacy@nordwolke.example",
    "website": "https://nordwolke.example",
    "purpose": "hosting and storage",
    "data_categories": ["contact data", "request records"],
    "subject_categories": ["customers' users"],
    "locations": ["DE"],
    "services": ["servers", "object storage"],
}
MAIL = {
    "legal_name": "Mailstream Inc.",
    "address": "ul. Piotrkowska 104, 90-001 Łódź, Poland",
    "contact": "dpo@mailstream.example",
    "purpose": "sending e-mail",
    "data_categories": ["e-mail address"],
    "subject_categories": ["requesters"],
    "locations": ["US"],
    "dpf_certified": True,
}
SUPPORT = {
    "legal_name": "Atendimento Pvt Ltd",
    "address": "Avenida Paulista 1578, 01310-200 São Paulo, Brazil",
    "contact": "privacy@atendimento.example",
    "purpose": "second-level support",
    "data_categories": ["contact data"],
    "subject_categories": ["customers' users"],
    "locations": ["IN"],
}


def add_register(effective: bool = True) -> list:
    """Three active sub-processors (DE; US under the DPF; IN under SCC module 3), in force
    for every account unless `effective` is False (then still in their notice period)."""
    created = []
    for data in (HOSTING, MAIL, SUPPORT):
        sp = services.create(data=dict(data), actor="operator:dpo")
        services.add_dpa(sp, version="2026-01", signed_on="2026-01-10", actor="operator:dpo")
        if data is SUPPORT:
            services.add_safeguard(
                sp,
                country="IN",
                kind="scc",
                scc_module=3,
                signed_on="2026-02-01",
                actor="operator:dpo",
            )
        services.activate(sp, actor="operator:dpo")
        created.append(sp)
    if effective:
        db.session.execute(update(ListVersion).values(effective_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    return created


@pytest.fixture
def register(app, tenant, monkeypatch):
    monkeypatch.setitem(app.config, "PROCESSOR_NAME", "Privacy Platform GmbH")
    monkeypatch.setitem(app.config, "PROCESSOR_CONTACT", "dpo@platform.example")
    return add_register()


def pdf_text(data: bytes) -> str:
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    return " ".join(text.split())


def fonts(data: bytes) -> list[tuple[str, bool]]:
    """Every font the pages use: (base font, whether its program is embedded)."""
    found = {}
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptors = [font.get("/FontDescriptor")]
            descriptors += [
                d.get_object().get("/FontDescriptor") for d in font.get("/DescendantFonts", [])
            ]
            embedded = any(
                d is not None
                and any(k in d.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3"))
                for d in descriptors
            )
            found[str(font["/BaseFont"])] = embedded
    return sorted(found.items())


def test_the_annex_lists_each_sub_processor_with_its_locations_and_safeguards(tenant, register):
    doc = documents.annex(tenant.account)

    assert doc["format"] == "privacy-subprocessor-annex/1"
    assert doc["processor"] == {"name": "Privacy Platform GmbH", "contact": "dpo@platform.example"}
    assert doc["controller"] == {"id": str(tenant.account.public_id), "name": "Acme GmbH"}
    assert doc["pending"] == []
    by_name = {sp["legal_name"]: sp for sp in doc["subprocessors"]}
    assert list(by_name) == ["Atendimento Pvt Ltd", "Mailstream Inc.", "Nordwolke Hosting AG"]
    hosting = by_name["Nordwolke Hosting AG"]
    assert hosting["address"] == HOSTING["address"]
    assert hosting["contact"] == HOSTING["contact"] and hosting["website"] == HOSTING["website"]
    assert hosting["purpose"] == "hosting and storage"
    assert hosting["services"] == ["servers", "object storage"]
    assert hosting["data_categories"] == ["contact data", "request records"]
    assert hosting["subject_categories"] == ["customers' users"]
    assert hosting["dpa"] == {"version": "2026-01", "signed_on": "2026-01-10"}
    assert hosting["locations"] == [
        {
            "country": "DE",
            "name": "Germany",
            "basis": "eea",
            "safeguard": "within the EU/EEA",
            "signed_on": None,
            "expires_on": None,
        }
    ]
    (us,) = by_name["Mailstream Inc."]["locations"]
    assert (us["name"], us["basis"], us["safeguard"]) == ("United States", "adequacy", DPF)
    assert by_name["Mailstream Inc."]["address"] == MAIL["address"]
    (india,) = by_name["Atendimento Pvt Ltd"]["locations"]
    assert (india["name"], india["basis"], india["safeguard"]) == ("India", "scc", SCC)
    assert india["signed_on"] == "2026-02-01"
    assert by_name["Atendimento Pvt Ltd"]["address"] == SUPPORT["address"]
    json.dumps(doc)  # JSON-ready as it is


def test_the_annex_shows_announced_changes_apart_from_the_list(tenant, register):
    late = services.create(
        data={**HOSTING, "legal_name": "Späte Wolke GmbH", "locations": ["FR"]},
        actor="operator:dpo",
    )
    services.add_dpa(late, version="1", signed_on="2026-01-10", actor="operator:dpo")
    version = services.activate(late, actor="operator:dpo")
    db.session.commit()

    doc = documents.annex(tenant.account)

    assert "Späte Wolke GmbH" not in [sp["legal_name"] for sp in doc["subprocessors"]]
    (pending,) = doc["pending"]
    assert pending["legal_name"] == "Späte Wolke GmbH" and pending["change"] == "added"
    assert pending["effective_at"] == version.effective_at.isoformat(timespec="seconds")
    later = documents.annex(tenant.account, version.effective_at + timedelta(seconds=1))
    assert "Späte Wolke GmbH" in [sp["legal_name"] for sp in later["subprocessors"]]


def test_the_record_has_every_art_30_2_item(tenant, register):
    doc = documents.record(tenant.account)

    assert doc["format"] == "privacy-record-of-processing/1"
    assert doc["processor"] == {"name": "Privacy Platform GmbH", "contact": "dpo@platform.example"}
    assert doc["controller"] == {
        "id": str(tenant.account.public_id),
        "name": "Acme GmbH",
        "contacts": [{"name": "Ada Admin", "email": "admin@acme.example"}],
    }
    assert [c["name"] for c in doc["categories_of_processing"]] == [
        "Inventory of data subjects",
        "Data-subject requests",
        "Log scrubbing",
        "Account administration and audit",
    ]
    assert [sp["legal_name"] for sp in doc["subprocessors"]] == [
        "Atendimento Pvt Ltd",
        "Mailstream Inc.",
        "Nordwolke Hosting AG",
    ]
    # Art. 30(2)(c): transfers outside the EU/EEA only, each with its safeguard.
    assert [
        (t["subprocessor"], t["country"], t["basis"], t["safeguard"]) for t in doc["transfers"]
    ] == [
        ("Atendimento Pvt Ltd", "IN", "scc", SCC),
        ("Mailstream Inc.", "US", "adequacy", DPF),
    ]
    assert doc["security_measures"] == documents.SECURITY_MEASURES
    measures = " ".join(m["description"] for m in doc["security_measures"])
    for needle in ["AES-256-GCM", "rotated", "HMAC", "HSTS", "hashes", "time-limited grant"]:
        assert needle in measures, needle
    assert doc["retention"] == documents.RETENTION
    retention = " ".join(r["period"] for r in doc["retention"])
    assert "kept 30 days" in retention and "90 days" in retention
    assert "erasure ledger" in retention and "Art. 17" in retention


def test_the_processor_contact_defaults_to_the_sender_address(app, tenant, monkeypatch):
    monkeypatch.setitem(app.config, "PROCESSOR_CONTACT", None)
    monkeypatch.setitem(app.config, "MAIL_FROM", "privacy@platform.example")

    assert documents.record(tenant.account)["processor"]["contact"] == "privacy@platform.example"
    assert documents.record(tenant.account)["subprocessors"] == []


def test_the_pdfs_state_every_item_in_any_script_with_fonts_embedded(tenant, register):
    annex = documents.render_annex_pdf(tenant.account)
    record = documents.render_record_pdf(tenant.account)

    common = [
        "Privacy Platform GmbH",
        "dpo@platform.example",
        "Acme GmbH",
        "Nordwolke Hosting AG",
        "Europaallee 41, 8004 Zürich, Switzerland",
        "ul. Piotrkowska 104, 90-001 Łódź, Poland",
        "Avenida Paulista 1578, 01310-200 São Paulo, Brazil",
        "privacy@atendimento.example",
        "hosting and storage",
        "second-level support",
        "Germany (DE)",
        "United States (US)",
        "India (IN)",
        "within the EU/EEA",
        "EU-US Data Privacy Framework",
        "SCC module 3",
        "2021/914",
        "2026-02-01",
        "version 2026-01",
    ]
    text = pdf_text(annex)
    assert "Annex: list of sub-processors" in text
    for needle in common:
        assert needle in text, needle

    text = pdf_text(record)
    assert "Record of processing activities (Art. 30(2) GDPR)" in text
    for needle in [
        *common,
        "Ada Admin, admin@acme.example",
        "Categories of processing",
        "Inventory of data subjects",
        "Transfers to third countries",
        "Standard contractual clauses",
        *(m["measure"] for m in documents.SECURITY_MEASURES),
        "AES-256-GCM",
        "kept 30 days",
        "within 90 days",
        "erasure ledger",
    ]:
        assert needle in text, needle

    for data in (annex, record):
        used = fonts(data)
        assert used and all(embedded for _name, embedded in used), used


@pytest.mark.parametrize(
    "path,mimetype",
    [
        ("/api/v1/documents/subprocessor-annex.pdf", "application/pdf"),
        ("/api/v1/documents/record-of-processing.pdf", "application/pdf"),
        ("/api/v1/documents/record-of-processing.json", "application/json"),
    ],
)
def test_members_download_the_documents_and_every_download_is_audited(
    client, tenant, register, path, mimetype
):
    name = path.rsplit("/", 1)[1]
    assert client.get(path).status_code == 401

    response = client.get(path, headers=tenant.token_for("member"))

    assert response.status_code == 200 and response.mimetype == mimetype
    assert response.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response.headers["Cache-Control"] == "no-store"
    if mimetype == "application/pdf":
        assert response.data.startswith(b"%PDF-")
        assert "Nordwolke Hosting AG" in pdf_text(response.data)
    events = client.get("/api/v1/audit?action=document.downloaded", headers=tenant.headers)
    assert [e["data"] for e in events.json["items"]] == [{"document": name}]
    assert events.json["items"][0]["actor"].startswith("token:")


def test_the_json_record_is_the_record(client, tenant, register):
    response = client.get("/api/v1/documents/record-of-processing.json", headers=tenant.headers)

    served = response.json
    expected = documents.record(tenant.account)
    for doc in (served, expected):
        doc.pop("generated_at")
        doc.pop("effective_at")
    assert served == expected


def test_each_account_gets_its_own_record(client, tenant, other_tenant, register):
    response = client.get(
        "/api/v1/documents/record-of-processing.json", headers=other_tenant.headers
    )

    assert response.json["controller"]["name"] == "Other Ltd"
    assert "admin@acme.example" not in response.get_data(as_text=True)
