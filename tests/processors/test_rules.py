"""The transfer rules judge plain records on a given date, without an app or a database."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from privacy.processors import rules

TODAY = date(2026, 11, 29)


def processor(locations, *, dpf=False, safeguards=(), dpas=()):
    return SimpleNamespace(
        locations=list(locations),
        dpf_certified=dpf,
        safeguards=list(safeguards),
        dpas=list(dpas),
    )


def term(signed_on=date(2026, 1, 1), expires_on=None, **fields):
    return SimpleNamespace(signed_on=signed_on, expires_on=expires_on, **fields)


def scc(country, module=3, **dates):
    return term(country=country, kind="scc", scc_module=module, **dates)


def test_eea_membership_and_adequacy_come_from_the_country_data():
    assert rules.is_eea("DE") and rules.is_eea("NO")
    assert not rules.is_eea("US") and not rules.is_eea("CH")
    assert rules.adequacy("CH") is not None
    assert rules.adequacy("US")["condition"] == "dpf"
    assert rules.adequacy("IN") is None


def test_country_codes_are_checked_and_named():
    assert rules.check_country(" de ") == "DE"
    assert rules.country_name("DE") == "Germany"
    for bad in ("XX", "DEU", "", None, 49):
        with pytest.raises(ValueError):
            rules.check_country(bad)


def test_the_us_adequacy_decision_covers_dpf_certified_processors_only():
    assert rules.transfer(processor(["US"], dpf=True), "US", TODAY).basis == "adequacy"
    uncertified = rules.transfer(processor(["US"]), "US", TODAY)
    assert uncertified.basis == "none" and not uncertified.lawful


def test_only_scc_module_3_or_bcrs_in_force_serve_as_safeguards():
    module_2 = processor(["IN"], safeguards=[scc("IN", module=2)])
    assert rules.transfer(module_2, "IN", TODAY).basis == "none"
    module_3 = scc("IN")
    found = rules.transfer(processor(["IN"], safeguards=[module_3]), "IN", TODAY)
    assert found.basis == "scc" and found.safeguard is module_3
    expired = processor(["IN"], safeguards=[scc("IN", expires_on=date(2026, 6, 30))])
    assert rules.transfer(expired, "IN", TODAY).basis == "none"
    bcr = term(country="IN", kind="bcr", scc_module=None)
    assert rules.transfer(processor(["IN"], safeguards=[bcr]), "IN", TODAY).basis == "bcr"


def test_blockers_name_every_location_without_a_basis_and_a_missing_dpa():
    assert rules.blockers(processor([]), TODAY) == [
        "No processing location is recorded.",
        "No DPA on file.",
    ]
    sp = processor(["DE", "US", "IN"], dpas=[term(expires_on=date(2026, 6, 30))])
    missing = rules.blockers(sp, TODAY)
    assert missing[0].startswith("US: not certified under the EU-US Data Privacy Framework")
    assert missing[1].startswith("IN: no adequacy decision")
    assert missing[2] == "No valid DPA on file."
    assert rules.blockers(processor(["DE"], dpas=[term()]), TODAY) == []
