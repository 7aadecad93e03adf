"""The default engine on addresses and numbers as real daemons write them.

`real_addresses.jsonl` has the shared corpus's format (see ../shared/scrub-corpus/README.md)
and is scored by the benchmark's own rules. Its lines were written for this file in the
formats of syslog, sshd, PAM, ftpd, HDFS, Windows CBS, macOS configd and kernel, Java
`host/address:port`, Celery and reverse-DNS host names; no line or value comes from a
public log collection. Spans are every IPv4 and IPv6 address of a host, also a private
one (the corpus's IP_ADDRESS has no exception for them, and the engine removes them), in
every position: in parentheses, after `host/`, right after an interface's colon
(`en0:2001:db8::1`), inside host names (dotted, dashed, glued to a word, zero-padded,
packed into twelve digits), and phone numbers beside lists of numbers. Decoys are their
look-alikes: log headers (`250611 140233 172`), lists of small numbers, versions, network
numbers and masks, hardware addresses, loopback, unspecified and multicast addresses, UUIDs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.scrub_corpus import Line
from benchmarks.scrub_corpus import Score
from benchmarks.scrub_corpus import load_corpus
from benchmarks.scrub_corpus import score
from privacy.scrubber.engine import Scrubber

REAL_ADDRESSES = Path(__file__).with_name("real_addresses.jsonl")


@pytest.fixture(scope="module")
def lines() -> list[Line]:
    return load_corpus(REAL_ADDRESSES)


@pytest.fixture(scope="module")
def scored(lines) -> Score:
    return score(lines, Scrubber().analyze_batch([line.text for line in lines]))


def test_file_has_forty_lines_of_addresses_and_their_look_alikes(lines):
    assert len(lines) >= 40
    assert len({line.id for line in lines}) == len(lines)
    subs = {span.sub for line in lines for span in line.spans}
    assert {"v4:dashed-host", "v4:packed-host", "v6:after-colon", "v4:host-slash"} <= subs
    decoys = {decoy.type for line in lines for decoy in line.decoys}
    assert {"timestamp", "number", "version", "network", "uuid"} <= decoys


def test_every_address_and_number_is_replaced_whole(scored):
    leaks = [
        f"{x.line.id} {x.span.type} {x.span.sub} "
        f"{x.line.text[x.span.start : x.span.end]!r}: {x.leaked} chars left"
        for x in scored.leaks
    ]
    assert not leaks, "\n".join(leaks)


def test_no_look_alike_is_touched(scored):
    wrong = [
        f"{x.line.id} {x.finding.entity_type} "
        f"{x.line.text[x.finding.start : x.finding.end]!r} on {','.join(x.decoy_types) or '-'}"
        for x in scored.false_positive_list
    ]
    assert not wrong, "\n".join(wrong)
    assert not scored.decoys_touched, dict(scored.decoys_touched)
