"""`flask processors seed`: the platform's own sub-processors as example data, activated and
announced once; a second run changes nothing and says so."""

from __future__ import annotations

import json

from sqlalchemy import func
from sqlalchemy import select

from privacy.audit.models import AuditEvent
from privacy.database import utcnow
from privacy.extensions import db
from privacy.processors import rules
from privacy.processors import services
from privacy.processors.models import FieldChange
from privacy.processors.models import ListVersion
from privacy.processors.models import Notice
from privacy.processors.models import SubProcessor
from tests.processors.test_register import register  # noqa: F401 - fixture

NAMES = [
    "Amazon Web Services EMEA SARL",
    "Stripe Payments Europe, Limited",
    "Google Ireland Limited",
    "Mailjet SAS",
]


def seed(app) -> list[dict]:
    result = app.test_cli_runner().invoke(args=["processors", "seed"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_seed_loads_the_platforms_sub_processors_activated_and_announced(
    app,
    register,  # noqa: F811 - fixture
    tenant,
):
    *lines, summary = seed(app)

    assert [(line["action"], line["legal_name"]) for line in lines] == [
        ("created", name) for name in NAMES
    ]
    assert [line["list_version"] for line in lines] == [1, 2, 3, 4]
    assert summary["created"] == 4 and summary["unchanged"] == 0
    registered = services.list_all()
    assert sorted(sp.legal_name for sp in registered) == sorted(NAMES)
    assert all(sp.example and sp.status == "active" and sp.dpas for sp in registered)
    today = utcnow().date()
    assert all(rules.blockers(sp, today) == [] for sp in registered)
    # Every account is told of every version (Art. 28(2)).
    assert count(Notice) == 4 and count(ListVersion) == 4

    aws = db.session.scalar(select(SubProcessor).where(SubProcessor.legal_name == NAMES[0]))
    assert aws.locations == ["DE", "US"] and aws.dpf_certified
    assert any("Frankfurt, eu-central-1" in s for s in aws.services)
    assert any("North Virginia, us-east-1" in s for s in aws.services)
    assert rules.transfer(aws, "DE", today).basis == "eea"
    us = rules.transfer(aws, "US", today)
    assert us.basis == "adequacy" and "Data Privacy Framework" in us.detail
    notice = db.session.scalar(select(ListVersion).where(ListVersion.number == 1)).notice
    assert [loc["name"] for loc in notice["subprocessor"]["locations"]] == [
        "Germany",
        "United States",
    ]


def test_seed_twice_changes_nothing_and_says_so(app, register):  # noqa: F811 - fixture
    seed(app)
    before = (count(SubProcessor), count(ListVersion), count(FieldChange), count(AuditEvent))

    *lines, summary = seed(app)

    assert [line["action"] for line in lines] == ["unchanged"] * 4
    assert all(line["status"] == "active" for line in lines)
    assert summary["created"] == 0 and summary["unchanged"] == 4
    assert summary["message"].startswith("Nothing to do")
    after = (count(SubProcessor), count(ListVersion), count(FieldChange), count(AuditEvent))
    assert after == before


def test_seed_leaves_a_sub_processor_the_dpo_entered_alone(app, register):  # noqa: F811
    services.create(
        data={
            "legal_name": "Mailjet SAS",
            "address": "Paris",
            "contact": "dpo@mailjet.example",
            "purpose": "e-mail",
            "locations": ["FR"],
        },
        actor="operator:dpo",
    )
    db.session.commit()

    *lines, summary = seed(app)

    assert lines[-1] == {
        "action": "unchanged",
        "legal_name": "Mailjet SAS",
        "id": lines[-1]["id"],
        "status": "draft",
    }
    mailjet = db.session.scalar(select(SubProcessor).where(SubProcessor.legal_name == NAMES[3]))
    assert not mailjet.example and mailjet.address == "Paris"
    assert summary["created"] == 3


def test_the_public_page_shows_the_example_badge(app, client, register):  # noqa: F811
    seed(app)
    page = client.get("/subprocessors").get_data(as_text=True)
    assert page.count('class="badge example"') == 5  # each entry, and the explanation
    assert "Frankfurt, eu-central-1" in page and "Germany" in page
