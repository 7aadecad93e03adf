"""Replacement gives exactly what Presidio's AnonymizerEngine gives for the same findings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.entities import RecognizerResult

from privacy.scrubber import anonymizer
from privacy.scrubber.engine import Finding
from privacy.scrubber.engine import Scrubber
from privacy.scrubber.operators import Operator

HERE = Path(__file__).parent
KEY = bytes(range(64))
# Neighbours of one type with spaces, other gaps, other types, and many findings in a row.
EDGES = [
    "Ana Lima  Bo Diaz, Ana Lima\tBo Diaz",
    "to ana@example.org bo@example.org and +44 20 7946 0958 81.2.69.142",
    " ".join(f"u{i}@example.org" for i in range(150)),
    ", ".join(f"10.0.{i}.7" for i in range(100)),
]


def presidio(text: str, findings, operator: Operator) -> str:
    results = [RecognizerResult(f.entity_type, f.start, f.end, f.score) for f in findings]
    operators = {
        entity: OperatorConfig(
            "custom", {"lambda": lambda value, entity=entity: operator.replacement(entity, value)}
        )
        for entity in {f.entity_type for f in findings}
    }
    return AnonymizerEngine().anonymize(text, results, operators).text if findings else text


@pytest.fixture(scope="module")
def lines_and_findings() -> list[tuple[str, list[Finding]]]:
    lines = list(EDGES)
    for path in sorted(HERE.glob("*.jsonl")):
        lines.extend(json.loads(row)["text"] for row in path.read_text().splitlines() if row)
    found = Scrubber(model=None).analyze_batch(lines)
    assert sum(len(f) for f in found) > 500
    return list(zip(lines, found, strict=True))


@pytest.mark.parametrize("mode", ["redact", "mask", "pseudonym", "token"])
def test_every_line_is_replaced_as_presidio_replaces_it(lines_and_findings, mode):
    operator = Operator(mode, key=None if mode in ("redact", "mask") else KEY)
    for text, findings in lines_and_findings:
        assert anonymizer.apply(text, findings, operator) == presidio(text, findings, operator)


def test_spaced_neighbours_of_one_type_become_one_replacement():
    text = "Ana Lima  Bo Diaz, Ana Lima"
    findings = [Finding(0, 8, "PERSON", 0.8), Finding(10, 17, "PERSON", 0.8)]
    findings.append(Finding(19, 27, "PERSON", 0.8))
    assert anonymizer.apply(text, findings, Operator("redact")) == "[PERSON], [PERSON]"
