"""The register's transfer rules (Chapter V GDPR): EEA membership, adequacy decisions, the
basis on which data may go to each processing location, and what keeps a sub-processor from
being active.

Plain data and functions, no database and no Flask: they read a sub-processor's recorded
fields (any object with them, such as the register's rows) and take the date they judge on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any
from typing import Protocol

import pycountry

SAFEGUARD_KINDS = ("scc", "bcr")
SCC_MODULES = (1, 2, 3, 4)
SCC_DECISION = "Commission Implementing Decision (EU) 2021/914"


class Term(Protocol):
    """What the rules read of a safeguard or a DPA: when it was signed and when it expires."""

    signed_on: date
    expires_on: date | None


class SafeguardTerms(Term, Protocol):
    country: str
    kind: str  # "scc" or "bcr"
    scc_module: int | None


class Processor(Protocol):
    """What the rules read of a sub-processor."""

    locations: list[str]  # ISO 3166-1 alpha-2
    dpf_certified: bool
    safeguards: Iterable[SafeguardTerms]
    dpas: Iterable[Term]


# -- countries ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _countries() -> dict:
    data = json.loads(resources.files("privacy.processors").joinpath("countries.json").read_text())
    return {"eea": frozenset(data["eea"]), "adequacy": {a["country"]: a for a in data["adequacy"]}}


def is_eea(code: str) -> bool:
    return code in _countries()["eea"]


def adequacy(code: str) -> dict | None:
    """The adequacy decision covering `code`, or None; see its 'condition' (US: DPF only)."""
    return _countries()["adequacy"].get(code)


def country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return country.name if country else code


def check_country(code) -> str:
    """An ISO 3166-1 alpha-2 code, upper case; ValueError otherwise."""
    if not isinstance(code, str) or len(code.strip()) != 2:
        raise ValueError("Use ISO 3166-1 two-letter country codes, e.g. DE or US.")
    code = code.strip().upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{code} is not an ISO 3166-1 country code.")
    return code


# -- the transfer basis of a location ----------------------------------------------------


@dataclass(frozen=True)
class Transfer:
    """How data may go to one location: within the EEA, under an adequacy decision, or
    under a safeguard on file (`safeguard`: the SCCs or BCRs relied on)."""

    country: str
    basis: str  # "eea", "adequacy", "scc", "bcr", or "none"
    detail: str
    safeguard: Any = None

    @property
    def lawful(self) -> bool:
        return self.basis != "none"


def valid_on(term: Term, today: date) -> bool:
    """Whether a safeguard or DPA is in force on `today`: signed, and not expired."""
    return term.signed_on <= today and (term.expires_on is None or term.expires_on > today)


def transfer(sp: Processor, country: str, today: date) -> Transfer:
    """The basis for `sp` processing data in `country` on `today`. The US adequacy decision
    covers DPF-certified organisations only; otherwise only SCC module 3 (processor to
    processor) or BCRs in force serve."""
    if is_eea(country):
        return Transfer(country, "eea", "within the EU/EEA")
    decision = adequacy(country)
    if decision is not None and (decision.get("condition") != "dpf" or sp.dpf_certified):
        return Transfer(country, "adequacy", decision["decision"])
    for safeguard in sp.safeguards:
        if safeguard.country != country or not valid_on(safeguard, today):
            continue
        if safeguard.kind == "scc" and safeguard.scc_module == 3:
            return Transfer(country, "scc", f"SCC module 3, {SCC_DECISION}", safeguard)
        if safeguard.kind == "bcr":
            return Transfer(country, "bcr", "Binding corporate rules", safeguard)
    return Transfer(country, "none", "no valid safeguard")


def blockers(sp: Processor, today: date) -> list[str]:
    """What keeps `sp` from being active on `today`: a location without a lawful transfer
    basis, no recorded location, no DPA in force. Empty when it may be active."""
    missing = []
    if not sp.locations:
        missing.append("No processing location is recorded.")
    for country in sp.locations:
        if transfer(sp, country, today).lawful:
            continue
        decision = adequacy(country)
        if decision is not None and decision.get("condition") == "dpf":
            missing.append(
                f"{country}: not certified under the EU-US Data Privacy Framework, and no "
                "valid SCC (module 3) or BCR on file."
            )
        else:
            missing.append(
                f"{country}: no adequacy decision, and no valid SCC (module 3) or BCR on file."
            )
    dpas = list(sp.dpas)
    if not any(valid_on(d, today) for d in dpas):
        missing.append("No valid DPA on file." if dpas else "No DPA on file.")
    return missing
