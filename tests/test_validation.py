"""E-mail normalization: the fast ASCII path agrees with email-validator on every case, and
an address keeps the case it was given in. Names and labels stay on one line; JSON that
would break deeper in is refused on parsing."""

from __future__ import annotations

import json

import pytest
from email_validator import EmailNotValidError
from email_validator import validate_email

from privacy.validation import MAX_JSON_DEPTH
from privacy.validation import UnsafeJson
from privacy.validation import clean_label
from privacy.validation import clean_name
from privacy.validation import clean_text
from privacy.validation import email_key
from privacy.validation import load_json
from privacy.validation import normalize_email

CASES = [
    "a@example.org",
    "Zoe.Mueller@Example.ORG",
    " padded@example.org ",
    "first.last+tag@sub.example.co.uk",
    "o'brien@example.ie",
    "x@localhost",
    "x@host.local",
    "x@foo.test",
    "x@example.invalid",
    "x@onion",
    "x@a.onion",
    "x@example",
    "x@123.com",
    "x@example.c",
    "x@example.123",
    "x@-example.org",
    "x@example-.org",
    "x@exa_mple.org",
    "x..y@example.org",
    ".x@example.org",
    "x.@example.org",
    "x@example..org",
    "a" * 64 + "@example.org",
    "a" * 65 + "@example.org",
    "x@" + "a" * 63 + ".org",
    "x@" + "a" * 64 + ".org",
    '"quoted"@example.org',
    "x@[192.0.2.1]",
    "zoë@example.org",
    "x@bücher.de",
    "x@xn--bcher-kva.de",
    "user@@example.org",
    "@example.org",
    "user@",
    "plainaddress",
    "x y@example.org",
    "x@exam ple.org",
    "x@example.org.",
    "{weird}!#$%&*=?^`|~@example.org",
    "x@sub-domain.example-site.museum",
    "U@EXAMPLE.COM",
    "x@" + ".".join(["abcdefghij"] * 23) + ".org",
    "a@ab--cd.com",
    "a@a--b.com",
    "a@sub.xy--z.org",
    "a\\b@example.org",
    "a/b@example.org",
]


def library(value: str) -> str | None:
    try:
        return email_key(validate_email(value.strip(), check_deliverability=False).normalized)
    except EmailNotValidError:
        return None


def ours(value: str) -> str | None:
    try:
        return email_key(normalize_email(value))
    except ValueError:
        return None


@pytest.mark.parametrize("value", CASES)
def test_fast_path_agrees_with_email_validator(value):
    assert ours(value) == library(value)


@pytest.mark.parametrize(
    "given",
    ["Juergen.Mueller@Example.DE", "  Ana.Lima@example.org ", "ZOE@EXAMPLE.ORG"],
)
def test_an_address_keeps_the_case_it_was_given_in(given):
    assert normalize_email(given) == given.strip()
    assert email_key(normalize_email(given)) == given.strip().lower()


def test_error_messages_never_repeat_the_input():
    with pytest.raises(ValueError) as info:
        normalize_email("secret-person@@example.org")
    assert "secret" not in str(info.value)


def test_names_are_trimmed_and_normalized():
    assert clean_name("  Zoe\u0308 ") == "Zoë"
    for bad in ("", "   ", "a\x00b", "x" * 201):
        with pytest.raises(ValueError):
            clean_name(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "Acme\r\nBcc: all@example.org",
        "Acme\nGmbH",
        "Acme\x00",
        "Acme\x1b[31m",
        "Acme\x85GmbH",  # NEL, a C1 control
        "Acme\u2028GmbH",  # line separator
        "Acme\u2029GmbH",  # paragraph separator
        "Acme\ud800",  # a lone surrogate
        "Tab\tName",
    ],
)
def test_labels_and_names_stay_on_one_line(bad):
    for check in (clean_name, lambda v: clean_label(v, what="Account name")):
        with pytest.raises(ValueError) as refused:
            check(bad)
        assert "Acme" not in str(refused.value) and "Name" in str(refused.value).title()


def test_a_label_is_trimmed_normalized_and_named_in_its_messages():
    assert clean_label("  Zoe\u0308 GmbH ", what="Account name") == "Zoë GmbH"
    assert clean_label("Ünïcødé & Co. KG 株式会社") == "Ünïcødé & Co. KG 株式会社"
    with pytest.raises(ValueError, match="^Account name is longer than 10 characters"):
        clean_label("x" * 11, what="Account name", max_length=10)
    with pytest.raises(ValueError, match="^Account name must not be empty"):
        clean_label(" ", what="Account name")
    with pytest.raises(ValueError, match="^Account name must be text"):
        clean_label(5, what="Account name")


def test_free_text_keeps_its_lines_but_no_other_control_characters():
    assert clean_text(" Street 1\r\n10115 Berlin\tDE ", what="Address", max_length=100) == (
        "Street 1\r\n10115 Berlin\tDE"
    )
    for bad in ("a\x00b", "a\x07b", "a\ud800b"):
        with pytest.raises(ValueError, match="^Address must"):
            clean_text(bad, what="Address", max_length=100)


@pytest.mark.parametrize(
    "raw,reason",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nests deeper"),
        (b'{"a": {"b": "\\udc00"}}', "lone surrogate"),
        (b'{"\\ud800": 1}', "lone surrogate"),
        (b'["a\\u0000"]', "NUL"),
        (b"[NaN]", "NaN"),
        (b"Infinity", "Infinity"),
        (b"1" * 5000, "too many digits"),
    ],
)
def test_json_that_would_break_later_is_refused_on_parsing(raw, reason):
    with pytest.raises(UnsafeJson, match=reason):
        load_json(raw)


def test_json_within_the_limits_parses_as_usual():
    depth = MAX_JSON_DEPTH
    assert load_json(b"[" * depth + b"]" * depth) is not None
    assert load_json('{"smile": "\\ud83d\\ude00", "n": 1e3}') == {"smile": "\U0001f600", "n": 1e3}
    with pytest.raises(json.JSONDecodeError):
        load_json(b'{"a": ')
    with pytest.raises(UnicodeDecodeError):
        load_json(b'"\xff"')
