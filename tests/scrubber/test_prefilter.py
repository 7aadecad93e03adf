"""The prefilter's gates change how fast a line is scrubbed, never what is found in it.

Every labelled line we have, and lines written here to sit on each gate's edge, get exactly
the same findings with the gates as with every rule asked on every line.
"""

from __future__ import annotations

import json
import platform
import re
import sys
import threading
from pathlib import Path

import pytest

from privacy.scrubber import engine
from privacy.scrubber import prefilter
from privacy.scrubber import recognizers
from privacy.scrubber.engine import Scrubber

HERE = Path(__file__).parent

# On each gate's edge: the least a rule needs, one character short of it, and look-alikes.
EDGE_LINES = [
    # IBAN: 15 characters at least, spaced or not; a country and two digits alone.
    "refund to NO9386011117947 queued",
    "refund to NO93 8601 1117 947 queued",
    "code DE12 only",
    # IPv6: `::` anywhere, eight groups, six groups and an IPv4 tail; times are not.
    "peer fe80::1%en0 up",
    "peer 2001:db8:0:0:0:0:2:1 up",
    "peer 0:0:0:0:0:ffff:81.2.69.142 up",
    "v6(en0:2001:db8::7) and 12:04:33 and 2025:04:06:14",
    "Apache 2001:db8::7:51234 - - GET /",
    # IPv4: a dotted quad, also glued to a word or inside parentheses; versions are not.
    "client (81.2.69.142) and host/10.86.169.121:62260 and version 1.2.3.4",
    "host129.206.196.21.example.com and dsl-81-2-69-142.example.net",
    "n081002069142.example.net ec2-81-2-69-142.compute.example",
    # Digits: seven digits in a run with separators; six are not; dates are not.
    "call +44 20 7946 0958 or (020) 7946 0958 or 0207 946 0958",
    "only 12 34 56 here and 2025-06-30 and 081109 203615 148",
    "card 4111 1111 1111 1111 and 4111-1111-1111-1111",
    "tel:+442079460958 and tel:02079460958",
    # Keys: each form, any case, and a key that is only a prefix of another word.
    'user=ana.lima USERNAME: "Ana Lima" {"customer": "Bo Diaz"} username_hash=ab12',
    "login 'J. Mellor' and name=Ana",
    # sshd, PAM, su, sudo, cron.
    "Invalid user oracle from 81.2.69.142 port 22",
    "input_userauth_request: invalid user marta [preauth]",
    "pam_unix(sshd:session): session opened for user jdoe(uid=1000) by (uid=0)",
    "su: (to root) jdoe on pts/0",
    "sudo:   jdoe : TTY=pts/0 ; PWD=/home/jdoe ; USER=root ; COMMAND=/bin/ls",
    "CRON[42]: (jdoe) CMD (run-parts /etc/cron.hourly)",
    # Phrases, verbs, literals and tuples, capitalized pairs for NER.
    "refund issued to Ana Lima after review",
    "Ana Lima updated billing details",
    "INSERT INTO users VALUES (7, Ana Lima, null), (8, Lima, Ana, x)",
    "msg=\"shim disconnected\" owner='Ana Lima'",
    "Dear Maria, your parcel left Lisbon Airport",
    # Identifiers and escapes.
    "task 0f8fad5b-d9cb-469f-a165-70867728950e done, trace 4bf92f3577b34da6a3ce929d0e0e4736",
    "GET /search?q=ana%40example.org&name=Ana+Lima HTTP/1.1",
    '{"msg": "hello \\u00c9lodie Martin"}',
    "phone: 551 2345 and sms to 5812345",
    # Python's \\s is wider than Hyperscan's: a file separator where a space may stand.
    "refund issued to\x1cAna Lima",
    'owner\x1c"Ana Lima"',
    "customer\x1c=\x1cAna",
    # Long lines are scanned in pieces, cut mid-word where there is no space.
    "x" * 4090 + "for Ana Lima from 81.2.69.142 " * 200,
    "abc" * 2000 + "for Ana Lima",
    # Not ASCII: every gate opens.
    "Zoë Brontë called from +44 20 7946 0958",
    "",
]


def _lines() -> list[str]:
    lines = list(EDGE_LINES)
    for path in sorted(HERE.glob("*.jsonl")):
        for row in path.read_text(encoding="utf-8").splitlines():
            if row.strip():
                lines.append(json.loads(row)["text"])
    return lines


def _without_gates(scrubber: Scrubber) -> Scrubber:
    scrubber.prefilter = prefilter.Prefilter({}, enabled=False)
    return scrubber


def _signature(findings) -> list[list[tuple]]:
    return [[(f.start, f.end, f.entity_type) for f in line] for line in findings]


def test_hyperscan_filters_lines_where_it_is_installed():
    expected = (sys.platform == "linux" and platform.machine() == "x86_64") or sys.platform in (
        "darwin",
        "win32",
    )
    assert engine._prefilter().active is expected


def test_gates_change_no_finding():
    lines = _lines()
    gated = Scrubber(model=None)
    assert gated.prefilter.active
    plain = _without_gates(Scrubber(model=None))
    assert _signature(gated.analyze_batch(lines)) == _signature(plain.analyze_batch(lines))


def test_gates_change_no_finding_with_ner():
    lines = [line for line in _lines() if any(c.isupper() for c in line)]
    gated = Scrubber()
    plain = _without_gates(Scrubber())
    assert _signature(gated.analyze_batch(lines)) == _signature(plain.analyze_batch(lines))


def test_each_gate_closes_on_a_line_that_cannot_match_it():
    gates = engine._prefilter().gates
    quiet = "12:04:33.120 INFO worker ready in 12 ms"
    mask = gates(quiet)
    for bit in (
        prefilter.IBAN,
        prefilter.IPV6,
        prefilter.IPV4,
        prefilter.DIGITS,
        prefilter.KEY,
        prefilter.LITERAL,
        prefilter.IDENTIFIER,
        prefilter.ESCAPE,
    ):
        assert not mask & bit, bit
    assert gates("call +44 20 7946 0958") & prefilter.DIGITS
    assert gates("from 81.2.69.142") & prefilter.IPV4


@pytest.mark.parametrize("line", ["Zoë called from +44 20 7946 0958", "bad byte \udcff here"])
def test_a_line_that_is_not_ascii_opens_every_gate(line):
    assert engine._prefilter().gates(line) == prefilter.ALL


def test_without_hyperscan_every_gate_is_open():
    off = prefilter.Prefilter({prefilter.IPV4: "[0-9]"}, enabled=False)
    assert not off.active
    assert off.gates("no digits here") == prefilter.ALL


def test_threads_share_the_prefilter():
    lines = _lines()
    gates = engine._prefilter().gates
    expected = [gates(line) for line in lines]
    results: list[list[int]] = []

    def work() -> None:
        results.append([gates(line) for line in lines])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 4


def test_the_kinds_searched_apart_give_what_their_alternation_gives():
    for line in _lines():
        alternation = [(m.lastgroup, m.span()) for m in recognizers.COMBINED.finditer(line)]
        merged = [(kind, m.span()) for kind, m in recognizers._candidates(line, recognizers.KINDS)]
        assert merged == alternation, line


@pytest.mark.parametrize(
    "before",
    ["call ", "phone: ", "Tel.", "from  ", "msisdn=", "callback-> ", "to", "x", "", "phone:    "],
)
def test_the_phone_word_read_backwards_is_the_phone_word_read_forwards(before):
    forwards = re.compile(r"(?i)(" + "|".join(recognizers._PHONE_WORDS) + r")\W{0,4}$")
    assert recognizers.phone_context(before) is (forwards.search(before) is not None)
