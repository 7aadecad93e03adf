"""The scrub benchmark's scorer follows the corpus rules (no engine, no spaCy needed)."""

from __future__ import annotations

import json

import pytest

from benchmarks.scrub_corpus import CorpusError
from benchmarks.scrub_corpus import Hit
from benchmarks.scrub_corpus import Line
from benchmarks.scrub_corpus import Span
from benchmarks.scrub_corpus import load_corpus
from benchmarks.scrub_corpus import score
from benchmarks.scrub_corpus import spread_indices


def line(text: str, *spans: Span, decoys: tuple[Span, ...] = (), id: str = "t") -> Line:
    return Line(id=id, text=text, spans=spans, decoys=decoys, fmt="test")


def test_span_is_caught_at_exactly_90_percent_coverage():
    text = "x" * 10 + "0123456789" + "y" * 10
    gold = line(text, Span(10, 20, "PHONE_NUMBER"))

    result = score([gold], [[Hit(10, 19, "PHONE_NUMBER")]])

    assert result.gold.caught == 1
    assert result.recall == 1.0
    assert result.leak_rate == pytest.approx(0.1)


def test_span_is_not_caught_at_89_percent_coverage():
    text = "a" * 100
    gold = line(text, Span(0, 100, "PERSON"))

    result = score([gold], [[Hit(0, 89, "PERSON")]])

    assert result.gold.caught == 0
    assert result.recall == 0.0
    assert result.leak_rate == pytest.approx(0.11)


def test_union_of_adjacent_findings_of_any_type_catches_one_span():
    text = "mail anna.berg@example.org now"
    gold = line(text, Span(5, 26, "EMAIL_ADDRESS"))

    result = score([gold], [[Hit(5, 14, "PERSON"), Hit(14, 26, "URL")]])

    assert result.gold.caught == 1
    assert result.leak_rate == 0.0
    assert result.false_positives == 0
    assert result.over_redaction == 0.0


def test_overlapping_findings_are_not_counted_twice():
    text = "ip 10.0.0.1 ok"
    gold = line(text, Span(3, 11, "IP_ADDRESS"))

    result = score([gold], [[Hit(0, 11, "IP_ADDRESS"), Hit(3, 14, "IP_ADDRESS")]])

    assert result.leak_rate == 0.0
    # All 6 non-PII characters ("ip " and " ok") are covered, once each.
    assert result.non_pii_chars == 6
    assert result.over_redacted_chars == 6
    assert result.over_redaction == 1.0


def test_fp_line_rate_counts_pii_free_lines_with_any_finding():
    clean_flagged = line("GET /health 200 in 3ms", decoys=(Span(12, 15, "http_status"),))
    clean_quiet = line("worker ready")
    with_pii = line("user 10.1.2.3", Span(5, 13, "IP_ADDRESS"))

    result = score(
        [clean_flagged, clean_quiet, with_pii],
        [[Hit(12, 15, "US_DRIVER_LICENSE")], [], [Hit(5, 13, "IP_ADDRESS"), Hit(0, 4, "X")]],
    )

    assert result.clean_lines == 2
    assert result.clean_lines_flagged == 1
    assert result.fp_line_rate == 0.5
    # A false positive on a PII line counts as a false positive, not as a flagged clean line.
    assert result.false_positives == 2
    assert result.fp_by_entity == {"US_DRIVER_LICENSE": 1, "X": 1}
    assert result.decoy_findings == {"http_status": 1}
    assert result.decoys_touched == {"http_status": 1}


def test_over_redaction_is_the_share_of_non_pii_characters_covered():
    # 20 characters, 5 of them PII: 15 non-PII characters, 3 of which are covered.
    text = "0123456789abcdefghij"
    gold = line(text, Span(5, 10, "CREDIT_CARD"))

    result = score([gold], [[Hit(2, 10, "CREDIT_CARD")]])

    assert result.non_pii_chars == 15
    assert result.over_redacted_chars == 3
    assert result.over_redaction == pytest.approx(3 / 15)
    assert result.leak_rate == 0.0
    assert result.false_positives == 0  # it overlaps the gold span


def test_leak_is_reported_per_type_and_per_variant():
    first = line(
        "Anna Berg 10.0.0.1",
        Span(0, 9, "PERSON", "intl:full"),
        Span(10, 18, "IP_ADDRESS", "v4"),
    )
    second = line("bob 10.0.0.2", Span(0, 3, "PERSON", "handle:first"), id="t2")

    result = score([first, second], [[Hit(10, 18, "IP_ADDRESS"), Hit(0, 4, "PERSON")], []])

    person = result.by_type["PERSON"]
    assert (person.spans, person.caught, person.chars) == (2, 0, 12)
    assert person.leaked == 5 + 3
    assert result.type_leak("PERSON") == pytest.approx(8 / 12)
    assert result.type_leak("IP_ADDRESS") == 0.0
    assert result.by_sub[("PERSON", "intl:full")].leaked == 5
    assert result.by_sub[("PERSON", "handle:first")].leak == 1.0
    assert result.leak_rate == pytest.approx(8 / 20)
    assert result.recall == pytest.approx(1 / 3)
    assert {(x.line.id, x.span.sub, x.leaked) for x in result.leaks} == {
        ("t", "intl:full", 5),
        ("t2", "handle:first", 3),
    }


def test_findings_outside_the_line_are_clipped_and_empty_ones_ignored():
    gold = line("abc", Span(0, 3, "PERSON"))

    result = score([gold], [[Hit(-5, 99, "PERSON"), Hit(2, 2, "PERSON")]])

    assert result.findings == 1
    assert result.leak_rate == 0.0
    assert result.over_redaction == 0.0


def test_load_corpus_reads_jsonl_and_rejects_offsets_outside_the_text(tmp_path):
    good = {
        "id": "dev-1",
        "fmt": "json",
        "text": "to a@b.example",
        "spans": [{"start": 3, "end": 14, "type": "EMAIL_ADDRESS", "sub": "free:x"}],
        "decoys": [],
    }
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(good | {"id": "dev-2"}) + "\n")

    lines = load_corpus(path)
    assert [x.id for x in lines] == ["dev-1", "dev-2"]
    assert lines[0].spans == (Span(3, 14, "EMAIL_ADDRESS", "free:x"),)
    assert len(load_corpus(path, limit=1)) == 1

    bad = good | {"spans": [{"start": 3, "end": 15, "type": "EMAIL_ADDRESS"}]}
    path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(CorpusError):
        load_corpus(path)


def test_stock_subset_is_evenly_spread_and_deterministic():
    assert spread_indices(10, 5) == [0, 2, 4, 6, 8]
    assert spread_indices(3, 0) == [0, 1, 2]
    assert spread_indices(3, 10) == [0, 1, 2]
