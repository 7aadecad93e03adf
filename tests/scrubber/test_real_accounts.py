"""People's login names in sshd, PAM, su, sudo and cron lines, and the look-alikes around them.

`real_accounts.jsonl` has the shared corpus's format (see ../shared/scrub-corpus/README.md)
and is scored by the benchmark's own rules. Its lines were written for this file in the
formats of those programs, with invented names and hosts: PERSON spans are people's login
names (also in home directories and Hadoop's job-user names) and a credited author; the
decoys are what must stay readable: system accounts (`root`, `news`, `test7`, `yarn`), a
numeric user name, log levels, verb phrases, power states and hardware terms, and
reverse-DNS bundle ids.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.scrub_corpus import Line
from benchmarks.scrub_corpus import Score
from benchmarks.scrub_corpus import load_corpus
from benchmarks.scrub_corpus import score
from privacy.scrubber.engine import Scrubber

ACCOUNTS = Path(__file__).with_name("real_accounts.jsonl")


@pytest.fixture(scope="module")
def lines() -> list[Line]:
    return load_corpus(ACCOUNTS)


@pytest.fixture(scope="module")
def scored(lines) -> Score:
    scrubber = Scrubber()
    return score(lines, scrubber.analyze_batch([line.text for line in lines]))


def test_file_has_many_people_and_many_look_alikes(lines):
    assert len({line.id for line in lines}) == len(lines) >= 40
    people = [s for line in lines for s in line.spans if s.type == "PERSON"]
    decoys = [d for line in lines for d in line.decoys]
    assert len(people) >= 30 and len(decoys) >= 25
    for line in lines:
        for span in line.spans + line.decoys:
            value = line.text[span.start : span.end]
            assert value == value.strip(), f"{line.id}: {span} has spaces at an edge"


def test_every_login_name_and_address_is_caught(scored):
    missed = [
        f"  {x.line.id} {x.span.type} {x.line.text[x.span.start : x.span.end]!r}"
        for x in scored.leaks
    ]
    assert not missed, "left readable:\n" + "\n".join(missed)


def test_no_system_account_or_log_word_is_touched(scored):
    touched = [
        f"  {x.line.id} {x.finding.entity_type} "
        f"{x.line.text[x.finding.start : x.finding.end]!r} on {','.join(x.decoy_types) or '-'}"
        for x in scored.false_positive_list
    ]
    assert not touched, "replaced though no person's data:\n" + "\n".join(touched)
    assert sum(scored.decoys_touched.values()) == 0, scored.decoys_touched
