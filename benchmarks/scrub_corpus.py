"""Labelled scrub corpus: loading its JSONL lines and scoring findings by the corpus rules.

The rules are those of ../shared/scrub-corpus/README.md, so figures compare across engines:

- a gold span is caught when the union of the line's findings covers at least 90% of its
  characters, whatever entity type the findings claim; recall = caught / gold spans;
- leak rate = share of gold PII characters covered by no finding (overall, per type);
- a finding overlapping no gold span is a false positive; FP-line rate = share of PII-free
  lines with at least one finding;
- over-redaction = share of non-PII characters covered by findings.

Engines only need to return objects with `start`, `end` (exclusive) and `entity_type`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import NamedTuple
from typing import Protocol

PII_TYPES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "IP_ADDRESS",
    "CREDIT_CARD",
    "IBAN_CODE",
)
# Caught at >= 90% coverage, compared in integers so that 9 of 10 characters is exactly 90%.
CAUGHT_NUMERATOR = 9
CAUGHT_DENOMINATOR = 10


class FindingLike(Protocol):
    start: int
    end: int
    entity_type: str


class Hit(NamedTuple):
    """A finding from an engine that has no Finding class of its own (stock Presidio, tests)."""

    start: int
    end: int
    entity_type: str
    score: float = 1.0


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    type: str
    sub: str = ""


@dataclass(frozen=True, slots=True)
class Line:
    id: str
    text: str
    spans: tuple[Span, ...] = ()
    decoys: tuple[Span, ...] = ()
    fmt: str = ""


class CorpusError(ValueError):
    """A corpus line that is not valid JSON or whose offsets do not fit its text."""


def parse_line(obj: dict) -> Line:
    """One corpus object as a Line; raises CorpusError on offsets outside the text."""
    text = obj["text"]

    def spans(key: str) -> tuple[Span, ...]:
        out = []
        for raw in obj.get(key) or ():
            span = Span(int(raw["start"]), int(raw["end"]), raw["type"], raw.get("sub", ""))
            if not 0 <= span.start < span.end <= len(text):
                raise CorpusError(f"{obj.get('id')}: {key} {span} outside a text of {len(text)}")
            out.append(span)
        return tuple(sorted(out, key=lambda s: (s.start, s.end)))

    return Line(
        id=str(obj.get("id", "")),
        text=text,
        spans=spans("spans"),
        decoys=spans("decoys"),
        fmt=obj.get("fmt", ""),
    )


def load_corpus(path: str | Path, limit: int | None = None) -> list[Line]:
    """The first `limit` lines (all when None) of a JSONL corpus file."""
    lines: list[Line] = []
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            if limit is not None and len(lines) >= limit:
                break
            if not raw.strip():
                continue
            try:
                lines.append(parse_line(json.loads(raw)))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise CorpusError(f"{path}:{number}: {exc!r}") from exc
    return lines


def spread_indices(n: int, k: int) -> list[int]:
    """`k` indices evenly spaced over range(n) (deterministic); all of them when k <= 0 or >= n."""
    if k <= 0 or k >= n:
        return list(range(n))
    return [i * n // k for i in range(k)]


def coverage_mask(length: int, findings: Iterable[FindingLike | Span]) -> bytearray:
    """One byte per character of the line: 1 where any finding covers it (clipped to the line)."""
    mask = bytearray(length)
    for f in findings:
        start, end = max(0, f.start), min(length, f.end)
        if start < end:
            mask[start:end] = b"\x01" * (end - start)
    return mask


def merged(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def overlaps(a_start: int, a_end: int, b: Span) -> bool:
    return a_start < b.end and b.start < a_end


@dataclass
class Tally:
    """Gold spans and characters of one group (a type, a `sub` variant, a format, or all)."""

    spans: int = 0
    caught: int = 0
    chars: int = 0
    leaked: int = 0

    @property
    def recall(self) -> float:
        return self.caught / self.spans if self.spans else float("nan")

    @property
    def leak(self) -> float:
        return self.leaked / self.chars if self.chars else float("nan")

    def add(self, length: int, covered: int) -> None:
        self.spans += 1
        self.chars += length
        self.leaked += length - covered
        if covered * CAUGHT_DENOMINATOR >= length * CAUGHT_NUMERATOR:
            self.caught += 1


@dataclass(frozen=True)
class LeakedSpan:
    """A gold span with characters no finding covers (caught spans can still leak up to 10%)."""

    line: Line
    span: Span
    covered: int
    findings: tuple  # the line's findings that overlap the span

    @property
    def leaked(self) -> int:
        return self.span.end - self.span.start - self.covered

    @property
    def leaked_share(self) -> float:
        return self.leaked / (self.span.end - self.span.start)


@dataclass(frozen=True)
class FalsePositive:
    """A finding that overlaps no gold span, with the decoy types it overlaps (if any)."""

    line: Line
    finding: FindingLike
    decoy_types: tuple[str, ...]


@dataclass
class Score:
    lines: int = 0
    pii_lines: int = 0
    clean_lines: int = 0
    clean_lines_flagged: int = 0
    non_pii_chars: int = 0
    over_redacted_chars: int = 0
    findings: int = 0
    gold: Tally = field(default_factory=Tally)
    by_type: dict[str, Tally] = field(default_factory=dict)
    by_sub: dict[tuple[str, str], Tally] = field(default_factory=dict)
    by_fmt: dict[str, Tally] = field(default_factory=dict)
    fp_by_entity: Counter = field(default_factory=Counter)  # false positives by claimed type
    decoys: Counter = field(default_factory=Counter)  # decoy spans per decoy type
    decoys_touched: Counter = field(default_factory=Counter)  # decoys with a covered character
    decoy_findings: Counter = field(default_factory=Counter)  # findings overlapping a decoy type
    leaks: list[LeakedSpan] = field(default_factory=list)
    false_positive_list: list[FalsePositive] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.gold.recall

    @property
    def leak_rate(self) -> float:
        return self.gold.leak

    def type_leak(self, entity_type: str) -> float:
        tally = self.by_type.get(entity_type)
        return tally.leak if tally else float("nan")

    @property
    def false_positives(self) -> int:
        return len(self.false_positive_list)

    @property
    def fp_line_rate(self) -> float:
        return self.clean_lines_flagged / self.clean_lines if self.clean_lines else float("nan")

    @property
    def over_redaction(self) -> float:
        return self.over_redacted_chars / self.non_pii_chars if self.non_pii_chars else 0.0


def score(lines: Sequence[Line], findings_per_line: Sequence[Iterable[FindingLike]]) -> Score:
    """Score an engine's findings (one list per line, same order) against the gold spans."""
    if len(lines) != len(findings_per_line):
        raise ValueError(f"{len(findings_per_line)} finding lists for {len(lines)} lines")
    result = Score(by_type={t: Tally() for t in PII_TYPES})
    for line, raw_findings in zip(lines, findings_per_line, strict=True):
        length = len(line.text)
        found = [f for f in raw_findings if max(0, f.start) < min(length, f.end)]
        mask = coverage_mask(length, found)
        result.lines += 1
        result.findings += len(found)

        for span in line.spans:
            span_len = span.end - span.start
            covered = mask.count(1, span.start, span.end)
            for tally in (
                result.gold,
                result.by_type.setdefault(span.type, Tally()),
                result.by_sub.setdefault((span.type, span.sub), Tally()),
                result.by_fmt.setdefault(line.fmt, Tally()),
            ):
                tally.add(span_len, covered)
            if covered < span_len:
                near = tuple(f for f in found if overlaps(f.start, f.end, span))
                result.leaks.append(LeakedSpan(line, span, covered, near))

        gold = merged((s.start, s.end) for s in line.spans)
        gold_chars = sum(end - start for start, end in gold)
        covered_gold = sum(mask.count(1, start, end) for start, end in gold)
        result.non_pii_chars += length - gold_chars
        result.over_redacted_chars += mask.count(1) - covered_gold

        if line.spans:
            result.pii_lines += 1
        else:
            result.clean_lines += 1
            result.clean_lines_flagged += bool(found)

        for decoy in line.decoys:
            result.decoys[decoy.type] += 1
            if mask.count(1, decoy.start, decoy.end):
                result.decoys_touched[decoy.type] += 1
        for f in found:
            decoy_types = tuple(
                dict.fromkeys(d.type for d in line.decoys if overlaps(f.start, f.end, d))
            )
            for decoy_type in decoy_types:
                result.decoy_findings[decoy_type] += 1
            if not any(overlaps(f.start, f.end, s) for s in line.spans):
                result.false_positive_list.append(FalsePositive(line, f, decoy_types))
                result.fp_by_entity[f.entity_type] += 1
    return result
