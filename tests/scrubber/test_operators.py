"""Operators: redaction, masking, stable pseudonyms, reversible tokens; JSON stays JSON."""

from __future__ import annotations

import json
import os

import pytest

from privacy.scrubber.engine import Scrubber
from privacy.scrubber.operators import Operator
from privacy.scrubber.operators import OperatorError
from privacy.scrubber.operators import reverse

KEY = b"p" * 32
TOKEN_KEY = b"t" * 64


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(model=None)


def test_redact_names_the_type(scrubber):
    assert scrubber.scrub("login by ana@example.org").text == "login by [EMAIL_ADDRESS]"


def test_mask_keeps_only_a_short_tail(scrubber):
    text = scrubber.scrub("card=4111111111111111", Operator("mask")).text
    assert text == "card=************1111"


def test_pseudonyms_are_stable_per_key_and_differ_across_keys(scrubber):
    first = scrubber.scrub("user=ana.lima", Operator("pseudonym", KEY)).text
    again = scrubber.scrub('{"user":"ana.lima"}', Operator("pseudonym", KEY)).text
    other = scrubber.scrub("user=ana.lima", Operator("pseudonym", b"q" * 32)).text
    token = first.split("=", 1)[1]
    assert token.startswith("<PERSON:") and token in again
    assert token not in other
    assert "ana" not in first


def test_tokens_reverse_only_with_their_key(scrubber):
    line = "payout to DE89370400440532013000 for user=ana.lima"
    text = scrubber.scrub(line, Operator("token", TOKEN_KEY)).text
    assert "ana.lima" not in text and "DE89" not in text
    assert reverse(text, TOKEN_KEY) == (line, 2)
    with pytest.raises(OperatorError):
        reverse(text, os.urandom(64))
    tampered = text.replace("<PERSON~", "<EMAIL_ADDRESS~")
    with pytest.raises(OperatorError):
        reverse(tampered, TOKEN_KEY)


@pytest.mark.parametrize(
    "mode,key",
    [("pseudonym", None), ("pseudonym", b"short"), ("token", b"x" * 32), ("shred", None)],
)
def test_operators_refuse_missing_or_bad_keys(mode, key):
    with pytest.raises(OperatorError):
        Operator(mode, key)


@pytest.mark.parametrize(
    "mode,key", [("redact", None), ("mask", None), ("pseudonym", KEY), ("token", TOKEN_KEY)]
)
def test_json_lines_stay_valid_json_with_the_same_shape(scrubber, mode, key):
    line = json.dumps(
        {
            "ts": "2025-06-29T13:05:40Z",
            "user": {"name": "Zoë Ångström", "id": 7},
            "to": "+44 7911 123456",
            "msg": "card 4111 1111 1111 1111 for Ana Lima",
            "tags": ["ana@example.org", 3],
        },
        ensure_ascii=False,
    )
    out = scrubber.scrub(line, Operator(mode, key)).text
    before, after = json.loads(line), json.loads(out)
    assert after.keys() == before.keys() and after["user"].keys() == before["user"].keys()
    assert after["ts"] == before["ts"] and after["user"]["id"] == 7
    for secret in ("Zoë", "Ångström", "7911", "4111 1111", "Ana Lima", "ana@example.org"):
        assert secret not in out


def test_json_escapes_are_scrubbed_and_stay_valid(scrubber):
    line = '{"name":"Ivica Hr\\u0161ak","n":1}'
    out = scrubber.scrub(line).text
    assert json.loads(out) == {"name": "[PERSON]", "n": 1}


def test_logfmt_keeps_keys_and_quotes(scrubber):
    line = 'level=info user=ana.lima holder="Ana Lima" email=ana@example.org took=3ms'
    assert scrubber.scrub(line).text == (
        'level=info user=[PERSON] holder="[PERSON]" email=[EMAIL_ADDRESS] took=3ms'
    )


def test_findings_point_into_the_original_line(scrubber):
    result = scrubber.scrub("mail ana@example.org")
    (finding,) = result.findings
    assert "mail ana@example.org"[finding.start : finding.end] == "ana@example.org"
    assert result.as_dict()["findings"][0]["entity_type"] == "EMAIL_ADDRESS"


def test_undecodable_bytes_do_not_break_any_mode():
    scrubber = Scrubber()  # with NER: spaCy must never see a lone surrogate
    line = "Payment declined for Henrietta \udcffLacks user=ana.lima \udcfe"
    for mode, key in (("redact", None), ("pseudonym", KEY), ("token", TOKEN_KEY)):
        result = scrubber.scrub(line, Operator(mode, key))
        assert "ana.lima" not in result.text and "Henrietta" not in result.text
        assert result.text.endswith("\udcfe")
    token = Operator("token", TOKEN_KEY).replacement("PERSON", "Zo\udcffe")
    assert reverse(token, TOKEN_KEY) == ("Zo\udcffe", 1)
    assert Operator("pseudonym", KEY).replacement("PERSON", "Zo\udcffe").startswith("<PERSON:")
