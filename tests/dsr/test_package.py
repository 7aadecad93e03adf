"""Access packages: JSON against its published schema (pinned by a snapshot), the PDF's
Art. 15 items, encryption at rest, the expiring audited download link."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import jsonschema
import pytest
from pypdf import PdfReader
from sqlalchemy import update

from privacy import storage
from privacy.database import utcnow
from privacy.dsr import package
from privacy.dsr import services
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db
from privacy.inventory import services as inventory
from privacy.processors import services as processors
from privacy.processors.models import ListVersion
from tests.processors.test_documents import DPF
from tests.processors.test_documents import HOSTING
from tests.processors.test_documents import SCC
from tests.processors.test_documents import add_register

# A controller's receipt time the OpenDSR API takes: recent (at most 92 days ago).
RECENT = (datetime.now(UTC) - timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")

EMAIL = "zoe.angstrom@example.org"


@pytest.fixture
def done(client, tenant, queue):
    """A completed access request about a subject held in two systems, for an account with
    three sub-processors in force (Germany; the US under the DPF; India under SCCs)."""
    add_register()
    crm = inventory.create_system(tenant.account, name="CRM", kind="crm", region="eu", actor="t")
    mail = inventory.create_system(
        tenant.account, name="Mailer", kind="email_provider", region="us", actor="t"
    )
    inventory.create_subject(
        tenant.account,
        name="Zoë Ångström",
        email=EMAIL,
        external_ref="cust-7",
        source="sign-up form",
        systems=[crm.public_id, mail.public_id],
        actor="t",
    )
    db.session.commit()
    sent = {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": "access",
        "submitted_time": RECENT,
        "subject_identities": [{"identity_type": "email", "identity_value": EMAIL}],
    }
    assert client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers).status_code == 201
    queue.run()  # the worker
    status = client.get(
        f"/opendsr/v1/requests/{sent['subject_request_id']}", headers=tenant.headers
    )
    request = services.get_by_subject_request_id(
        tenant.account, uuid.UUID(sent["subject_request_id"])
    )
    path = status.json["results_url"].split("://", 1)[1].split("/", 1)[1]
    return request, "/" + path


def normalized(document: dict) -> dict:
    """The package with ids and times replaced, for the snapshot."""
    text = json.dumps(document, sort_keys=True)
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\+00:00)?", "<time>", text)
    return json.loads(text)


SNAPSHOT = {
    "account": {"id": "<uuid>", "name": "Acme GmbH"},
    "data_held": True,
    "format": "privacy-access-package/2",
    "generated_at": "<time>",
    "information": {
        "automated_decisions": "None.",
        "categories": ["identification data: name", "contact data: e-mail address"],
        "complaint": services.COMPLAINT,
        "controller": "Acme GmbH",
        "purposes": [
            "Providing Acme GmbH's service to you, on Acme GmbH's instructions (the platform "
            "processes your data as a processor, Art. 28 GDPR)."
        ],
        "recipients": [
            {"kind": "crm", "location": "EU", "name": "CRM", "safeguard": None},
            {"kind": "email_provider", "location": "US", "name": "Mailer", "safeguard": None},
            {
                "kind": "sub-processor: second-level support",
                "location": "India (IN)",
                "name": "Atendimento Pvt Ltd",
                "safeguard": SCC,
            },
            {
                "kind": "sub-processor: sending e-mail",
                "location": "United States (US)",
                "name": "Mailstream Inc.",
                "safeguard": DPF,
            },
            {
                "kind": "sub-processor: hosting and storage",
                "location": "Germany (DE)",
                "name": "Nordwolke Hosting AG",
                "safeguard": "within the EU/EEA",
            },
        ],
        "retention": "Kept while you are a user of the service or until the controller has it "
        "erased. " + package.BACKUP_POLICY,
        "rights": package.RIGHTS,
        "source": "sign-up form",
    },
    "request": {
        "id": "<uuid>",
        "received_at": "<time>",
        "subject_request_id": "<uuid>",
        "type": "access",
    },
    "requests": [
        {
            "completed_at": None,
            "id": "<uuid>",
            "received_at": "<time>",
            "status": "in_progress",
            "type": "access",
        }
    ],
    "subjects": [
        {
            "created_at": "<time>",
            "email": EMAIL,
            "external_ref": "cust-7",
            "id": "<uuid>",
            "name": "Zoë Ångström",
            "source": "sign-up form",
            "systems": [
                {"id": "<uuid>", "kind": "crm", "name": "CRM", "region": "eu"},
                {"id": "<uuid>", "kind": "email_provider", "name": "Mailer", "region": "us"},
            ],
            "updated_at": "<time>",
        }
    ],
}


def test_the_json_follows_its_schema_and_the_snapshot(client, done):
    _request, link = done
    page = client.get(link)
    assert page.status_code == 200 and "access.json" in page.get_data(as_text=True)

    document = client.get(link + "/access.json")

    assert document.headers["Content-Disposition"] == 'attachment; filename="access.json"'
    jsonschema.validate(document.json, package.schema())
    assert normalized(document.json) == SNAPSHOT


def test_the_schema_is_published(client):
    published = client.get("/opendsr/v1/schemas/access-package.json")
    assert published.status_code == 200 and published.json == package.schema()
    jsonschema.Draft202012Validator.check_schema(published.json)


def test_the_pdf_states_every_art_15_item(client, done):
    _request, link = done
    response = client.get(link + "/access.pdf")
    assert response.mimetype == "application/pdf"

    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    text = " ".join(text.split())
    for needle in [
        "Zoë Ångström",
        EMAIL,
        "Purposes of the processing",
        "Categories of personal data",
        "Recipients",
        "CRM",
        "Mailer",
        "Nordwolke Hosting AG",
        "Germany (DE)",
        "India (IN)",
        "SCC module 3",
        "2021/914",
        "2023/1795",
        "Retention",
        "kept 30 days",
        "90 days",
        "Source of the data",
        "sign-up form",
        "Your rights",
        "erasure (Art. 17)",
        "complaint",
        "supervisory authority",
    ]:
        assert needle in text, needle


def test_recipients_are_the_sub_processors_in_force_for_the_account(tenant, done):
    request, _link = done
    late = processors.create(
        data={**HOSTING, "legal_name": "Späte Wolke GmbH", "locations": ["FR", "IN"]},
        actor="operator:dpo",
    )
    processors.add_dpa(late, version="1", signed_on="2026-01-10", actor="operator:dpo")
    processors.add_safeguard(
        late, country="IN", kind="bcr", signed_on="2026-01-10", actor="operator:dpo"
    )
    version = processors.activate(late, actor="operator:dpo")
    db.session.commit()

    recipients = package.build_access(tenant.account, request, [])["information"]["recipients"]
    assert "Späte Wolke GmbH" not in {r["name"] for r in recipients}  # still in its notice period

    db.session.execute(
        update(ListVersion)
        .where(ListVersion.id == version.id)
        .values(effective_at=utcnow() - timedelta(seconds=1))
    )
    recipients = package.build_access(tenant.account, request, [])["information"]["recipients"]
    assert [r for r in recipients if r["name"] == "Späte Wolke GmbH"] == [
        {
            "name": "Späte Wolke GmbH",
            "kind": "sub-processor: hosting and storage",
            "location": "France (FR)",
            "safeguard": "within the EU/EEA",
        },
        {
            "name": "Späte Wolke GmbH",
            "kind": "sub-processor: hosting and storage",
            "location": "India (IN)",
            "safeguard": "Binding corporate rules",
        },
    ]


def test_documents_are_encrypted_at_rest(done):
    request, _link = done
    keys = list(storage.get().list(request.results_prefix))
    assert sorted(keys) == [
        request.results_prefix + "access.json.enc",
        request.results_prefix + "access.pdf.enc",
    ]
    for key in keys:
        blob = storage.get().get(key)
        assert EMAIL.encode() not in blob and "Ångström".encode() not in blob
    assert json.loads(package.load(request, "access.json"))["subjects"][0]["email"] == EMAIL


def test_every_download_is_audited(client, tenant, done):
    _request, link = done
    client.get(link + "/access.json")
    client.get(link + "/access.pdf")

    audit = client.get("/api/v1/audit?action=dsr.downloaded", headers=tenant.headers).json["items"]
    assert sorted(e["data"]["file"] for e in audit) == ["access.json", "access.pdf"]


def test_an_expired_link_shows_a_clear_page(client, done):
    request, link = done
    db.session.execute(
        update(DataSubjectRequest)
        .where(DataSubjectRequest.id == request.id)
        .values(download_expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()

    page = client.get(link)
    assert page.status_code == 404 and "expired" in page.get_data(as_text=True)
    assert client.get(link + "/access.json").status_code == 404
    assert client.get("/dsr/results/made-up-link").status_code == 404


def test_the_link_lasts_seven_days_by_default(done):
    request, _link = done
    assert timedelta(days=6, hours=23) < request.download_expires_at - utcnow() <= timedelta(days=7)


def test_an_access_request_by_customer_id_lists_every_record_of_that_id(client, tenant, queue):
    crm = inventory.create_system(tenant.account, name="CRM", kind="crm", region="eu", actor="t")
    shop = inventory.create_system(
        tenant.account, name="Shop", kind="other", region="us", actor="t"
    )
    for n, held in enumerate(([crm.public_id], [shop.public_id], [])):
        inventory.create_subject(
            tenant.account,
            name=f"Record Number{n}",
            email=f"record{n}@example.org",
            external_ref="cust-3",
            source=f"source {n}",
            systems=held,
            actor="t",
        )
    inventory.create_subject(
        tenant.account, name="Not Them", email="other@example.org", external_ref="cust-4", actor="t"
    )
    db.session.commit()
    sent = {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": "access",
        "submitted_time": RECENT,
        "subject_identities": [
            {"identity_type": "controller_customer_id", "identity_value": "cust-3"}
        ],
    }
    assert client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers).status_code == 201
    queue.run()
    request = services.get_by_subject_request_id(
        tenant.account, uuid.UUID(sent["subject_request_id"])
    )

    document = json.loads(package.load(request, "access.json"))
    jsonschema.validate(document, package.schema())
    assert document["data_held"] is True
    assert [
        (s["email"], s["external_ref"], [x["name"] for x in s["systems"]])
        for s in document["subjects"]
    ] == [
        ("record0@example.org", "cust-3", ["CRM"]),
        ("record1@example.org", "cust-3", ["Shop"]),
        ("record2@example.org", "cust-3", []),
    ]
    information = document["information"]
    assert [r["name"] for r in information["recipients"][:2]] == ["CRM", "Shop"]
    assert information["source"] == "source 0; source 1; source 2"
    pdf = package.load(request, "access.pdf")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    for n in range(3):
        assert f"Number{n}" in text and f"record{n}@example.org" in text
    assert "Not Them" not in text
