"""The default engine on our own labelled log lines, held to the issue's accuracy targets.

`labelled.jsonl` has the shared corpus's format (see ../shared/scrub-corpus/README.md) and is
scored by the benchmark's own rules, so a figure here means what it means there. The lines,
names and numbers were written for this file: none come from the corpus or from Faker.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.scrub import FP_LINE_TARGET
from benchmarks.scrub import LEAK_TARGET
from benchmarks.scrub import OVER_REDACTION_TARGET
from benchmarks.scrub import PERSON_LEAK_TARGET
from benchmarks.scrub_corpus import PII_TYPES
from benchmarks.scrub_corpus import Line
from benchmarks.scrub_corpus import Score
from benchmarks.scrub_corpus import load_corpus
from benchmarks.scrub_corpus import score
from privacy.scrubber.engine import Scrubber

LABELLED = Path(__file__).with_name("labelled.jsonl")


@dataclass
class Scored:
    """The file's lines and the engine's score on them; a short repr, so that a failing test
    prints the lines named in its message and not the whole file."""

    lines: list[Line]
    score: Score

    def __repr__(self) -> str:
        return f"<{len(self.lines)} labelled lines, scored>"

    def line_number(self, line: Line) -> int:
        return self.lines.index(line) + 1

    def leaks(self, entity_type: str | None = None) -> str:
        """One row per leaking gold span: file line, type, variant, characters left readable."""
        return "\n".join(
            f"  line {self.line_number(x.line)} {x.span.type} {x.span.sub} "
            f"[{x.span.start}:{x.span.end}]: {x.leaked} of {x.span.end - x.span.start} chars leaked"
            for x in self.score.leaks
            if entity_type in (None, x.span.type)
        )

    def false_positives(self, *, clean_only: bool) -> str:
        """One row per finding that overlaps no gold span: file line, claimed type, offsets."""
        return "\n".join(
            f"  line {self.line_number(x.line)} {x.finding.entity_type} "
            f"[{x.finding.start}:{x.finding.end}]"
            + (f" on {','.join(x.decoy_types)}" if x.decoy_types else "")
            for x in self.score.false_positive_list
            if not (clean_only and x.line.spans)
        )


@pytest.fixture(scope="module")
def scored() -> Scored:
    lines = load_corpus(LABELLED)
    scrubber = Scrubber()
    return Scored(lines, score(lines, scrubber.analyze_batch([line.text for line in lines])))


def test_labelled_file_covers_every_entity_and_many_pii_free_lines():
    lines = load_corpus(LABELLED)  # offsets outside a line raise CorpusError
    assert len({line.id for line in lines}) == len(lines)
    spans = [span for line in lines for span in line.spans]
    assert {span.type for span in spans} <= set(PII_TYPES)
    per_type = Counter(span.type for span in spans)
    assert all(per_type[t] >= 15 for t in PII_TYPES), per_type
    assert sum(not line.spans for line in lines) >= 60
    for line in lines:
        for a, b in zip(line.spans, line.spans[1:], strict=False):
            assert a.end <= b.start, f"{line.id}: overlapping spans"
        for span in line.spans:
            value = line.text[span.start : span.end]
            assert value == value.strip(), f"{line.id}: span {span} has spaces at an edge"


def test_pii_characters_left_unredacted_at_most_2_percent(scored):
    leak = scored.score.leak_rate
    assert leak <= LEAK_TARGET, f"leak {leak:.2%} > {LEAK_TARGET:.0%}:\n{scored.leaks()}"


def test_person_characters_left_unredacted_at_most_10_percent(scored):
    leak = scored.score.type_leak("PERSON")
    assert leak <= PERSON_LEAK_TARGET, (
        f"PERSON leak {leak:.2%} > {PERSON_LEAK_TARGET:.0%}:\n{scored.leaks('PERSON')}"
    )


def test_pii_free_lines_with_any_finding_at_most_1_percent(scored):
    rate = scored.score.fp_line_rate
    assert rate <= FP_LINE_TARGET, (
        f"{scored.score.clean_lines_flagged} of {scored.score.clean_lines} PII-free lines "
        f"flagged ({rate:.2%} > {FP_LINE_TARGET:.0%}):\n{scored.false_positives(clean_only=True)}"
    )


def test_non_pii_characters_redacted_at_most_half_a_percent(scored):
    share = scored.score.over_redaction
    assert share <= OVER_REDACTION_TARGET, (
        f"over-redaction {share:.3%} > {OVER_REDACTION_TARGET:.1%}; findings on no gold span:\n"
        + scored.false_positives(clean_only=False)
    )
