"""The register: fields and their history, safeguards, DPAs and documents, the activation
rule, list versions and the notices they send."""

from __future__ import annotations

import io
from datetime import date
from datetime import timedelta

import pytest
from pypdf import PdfWriter
from sqlalchemy import select

from privacy.errors import Conflict
from privacy.errors import PayloadTooLarge
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.processors import notices
from privacy.processors import rules
from privacy.processors import services
from privacy.processors.models import ListVersion
from privacy.processors.models import Notice

TODAY = date(2026, 11, 29)


def pdf_bytes(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make(locations, **extra):
    data = {
        "legal_name": extra.pop("legal_name", "Hosting GmbH"),
        "address": "Musterstraße 1, 10115 Berlin, Germany",
        "contact": "privacy@hosting.example",
        "purpose": "hosting and storage",
        "data_categories": ["contact data"],
        "subject_categories": ["customers' users"],
        "locations": locations,
        **extra,
    }
    sp = services.create(data=data, actor="operator:dpo")
    db.session.flush()
    return sp


def with_dpa(sp, **extra):
    services.add_dpa(
        sp, version="2026-01", signed_on=date(2026, 1, 10), actor="operator:dpo", **extra
    )
    return sp


@pytest.fixture
def register(app, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "STORAGE_URL", f"file://{tmp_path / 'storage'}")
    monkeypatch.delitem(app.extensions, "storage", raising=False)
    yield
    app.extensions.pop("storage", None)


@pytest.mark.parametrize(
    "locations,dpf,expected",
    [
        (["DE", "FR"], False, []),  # EU
        (["NO", "IS"], False, []),  # EEA
        (["CH", "GB", "JP"], False, []),  # adequacy decisions
        (["US"], True, []),  # adequacy for DPF-certified US companies
    ],
)
def test_lawful_locations_need_only_a_dpa(register, locations, dpf, expected):
    sp = with_dpa(make(locations, dpf_certified=dpf))
    assert rules.blockers(sp, TODAY) == expected


def test_a_us_company_without_dpf_needs_scc_module_3(register):
    sp = with_dpa(make(["US"]))
    (missing,) = rules.blockers(sp, TODAY)
    assert "US" in missing and "Data Privacy Framework" in missing

    services.add_safeguard(
        sp, country="US", kind="scc", scc_module=2, signed_on="2026-01-10", actor="operator:dpo"
    )
    assert len(rules.blockers(sp, TODAY)) == 1  # module 2 is controller to processor
    services.add_safeguard(
        sp, country="US", kind="scc", scc_module=3, signed_on="2026-01-10", actor="operator:dpo"
    )
    assert rules.blockers(sp, TODAY) == []
    assert rules.transfer(sp, "US", TODAY).basis == "scc"


def test_a_non_adequate_country_with_and_without_scc(register):
    sp = with_dpa(make(["IN"], legal_name="Support Pvt Ltd"))
    assert "IN: no adequacy decision" in rules.blockers(sp, TODAY)[0]
    services.add_safeguard(
        sp,
        country="IN",
        kind="scc",
        scc_module=3,
        signed_on="2025-01-01",
        expires_on="2026-06-30",
        actor="operator:dpo",
    )
    assert rules.blockers(sp, date(2026, 6, 1)) == []
    assert rules.blockers(sp, TODAY)  # the SCC expired on 30 June
    services.add_safeguard(
        sp, country="IN", kind="bcr", signed_on="2026-07-01", actor="operator:dpo"
    )
    assert rules.blockers(sp, TODAY) == []
    assert rules.transfer(sp, "IN", TODAY).basis == "bcr"


def test_a_missing_or_expired_dpa_blocks(register):
    sp = make(["DE"])
    assert rules.blockers(sp, TODAY) == ["No DPA on file."]
    with_dpa(sp, expires_on="2026-06-30")
    assert rules.blockers(sp, TODAY) == ["No valid DPA on file."]


def test_activation_is_refused_with_what_is_missing_then_announced(register, tenant, other_tenant):
    sp = make(["US"])
    with pytest.raises(Conflict) as refused:
        services.activate(sp, actor="operator:dpo")
    assert len(refused.value.data["errors"]["missing"]) == 2
    assert sp.status == "draft"

    with_dpa(sp)
    services.add_safeguard(
        sp, country="US", kind="scc", scc_module=3, signed_on="2026-01-10", actor="operator:dpo"
    )
    version = services.activate(sp, actor="operator:dpo")
    db.session.commit()

    assert sp.status == "active" and version.number == 1 and version.change == "added"
    assert version.effective_at - version.announced_at == timedelta(days=30)
    notice = version.notice["subprocessor"]
    assert notice["legal_name"] == "Hosting GmbH" and notice["contact"] == "privacy@hosting.example"
    assert notice["locations"] == [
        {
            "country": "US",
            "name": "United States",
            "basis": "scc",
            "safeguard": "SCC module 3, Commission Implementing Decision (EU) 2021/914",
        }
    ]
    assert {n.account_id for n in db.session.scalars(select(Notice))} == {
        tenant.account.id,
        other_tenant.account.id,
    }
    assert [n.list_version.number for n in notices.notices_for(tenant.account)] == [1]
    with pytest.raises(Conflict):
        services.activate(sp, actor="operator:dpo")


def test_replacing_and_retiring_make_new_versions(register, tenant):
    old = with_dpa(make(["DE"]))
    services.activate(old, actor="operator:dpo")
    new = with_dpa(make(["FR"], legal_name="Hébergement SAS"))
    version = services.activate(new, actor="operator:dpo", replaces=old)

    assert (
        version.change == "replaced" and version.notice["replaces"]["legal_name"] == "Hosting GmbH"
    )
    assert old.status == "retired"
    removal = services.retire(new, actor="operator:dpo")
    assert removal.change == "removed" and removal.effective_at == removal.announced_at
    assert [
        v.number for v in db.session.scalars(select(ListVersion).order_by(ListVersion.number))
    ] == [1, 2, 3]


def test_every_field_change_is_kept(register):
    sp = make(["DE"])
    services.update(
        sp, changes={"purpose": "backups", "locations": ["de", "AT"]}, actor="operator:a"
    )
    services.update(sp, changes={"purpose": "backups"}, actor="operator:b")  # no change

    changes = [(c.field, c.old, c.new, c.actor) for c in services.history(sp)]
    assert ("purpose", "hosting and storage", "backups", "operator:a") in changes
    assert ("locations", ["DE"], ["DE", "AT"], "operator:a") in changes
    assert not any(actor == "operator:b" for *_, actor in changes)


@pytest.mark.parametrize(
    "change,field",
    [
        ({"locations": ["XX"]}, "locations"),
        ({"locations": ["Germany"]}, "locations"),
        ({"legal_name": ""}, "legal_name"),
        ({"data_categories": "contact"}, "data_categories"),
        ({"review_due": "soon"}, "review_due"),
        ({"dpf_certified": "yes"}, "dpf_certified"),
    ],
)
def test_bad_fields_are_422_with_the_field(register, change, field):
    sp = make(["DE"])
    with pytest.raises(ValidationFailed) as refused:
        services.update(sp, changes=change, actor="operator:dpo")
    assert field in refused.value.data["errors"]


def test_scc_module_5_and_unknown_countries_are_refused(register):
    sp = make(["DE"])
    with pytest.raises(ValidationFailed) as module:
        services.add_safeguard(
            sp, country="US", kind="scc", scc_module=5, signed_on="2026-01-01", actor="o"
        )
    assert "scc_module" in module.value.data["errors"]
    with pytest.raises(ValidationFailed) as country:
        services.add_safeguard(
            sp, country="QQ", kind="scc", scc_module=3, signed_on="2026-01-01", actor="o"
        )
    assert "country" in country.value.data["errors"]


def test_documents_must_be_real_pdfs_of_at_most_20_mb(register):
    sp = make(["DE"])
    dpa = services.add_dpa(
        sp, version="v1", signed_on="2026-01-01", document=pdf_bytes(), actor="o"
    )
    assert services.document(dpa.document_key).startswith(b"%PDF-")
    with pytest.raises(ValidationFailed):
        services.add_dpa(
            sp, version="v2", signed_on="2026-01-01", document=b"PK\x03\x04zip", actor="o"
        )
    with pytest.raises(ValidationFailed):
        services.add_dpa(
            sp, version="v3", signed_on="2026-01-01", document=b"%PDF-1.7 garbage", actor="o"
        )
    with pytest.raises(PayloadTooLarge):
        services.add_dpa(
            sp,
            version="v4",
            signed_on="2026-01-01",
            document=b"%PDF-1.7\n" + b"0" * (30 * 1024 * 1024),
            actor="o",
        )
    assert [d.version for d in sp.dpas] == ["v1"]


def test_the_dashboard_shows_blocked_lapsed_and_due(register):
    draft = make(["US"], legal_name="Draft Inc")
    active = with_dpa(make(["DE"], legal_name="Active GmbH"), expires_on="2026-12-31")
    services.activate(active, actor="o")
    make(["DE"], legal_name="Review AG", review_due="2026-12-01")

    board = services.dashboard(date(2027, 1, 2))
    assert [sp.legal_name for sp, _ in board["blocked"]] == ["Draft Inc", "Review AG"]
    assert [sp.legal_name for sp, _ in board["lapsed"]] == ["Active GmbH"]
    assert [sp.legal_name for sp in board["reviews"]] == ["Review AG"]
    assert draft.status == "draft"
