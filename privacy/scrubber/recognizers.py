"""Pattern recognizers curated for log lines: one combined regex pass, then strict validation.

Each recognizer is a Presidio EntityRecognizer, so it also plugs into a stock AnalyzerEngine;
the Scrubber calls them directly, which skips the engine's per-call overhead.
"""

from __future__ import annotations

import functools
import ipaddress
import re

import phonenumbers
import re2
import regex
from stdnum import iban as stdnum_iban

from privacy.scrubber import patterns as custom
from privacy.scrubber.config import CARD
from privacy.scrubber.config import EMAIL
from privacy.scrubber.config import IBAN
from privacy.scrubber.config import IP
from privacy.scrubber.config import PHONE
from privacy.scrubber.results import Result

# E-mail, also URL-encoded (%40) as in query strings; the local part may carry %2B etc.
_EMAIL = r"(?P<email>[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}(?:@|%40)(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24})"
_IBAN = r"(?P<iban>\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b)"
_IPV6 = r"(?P<ipv6>(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:|::)[0-9A-Fa-f:.]{2,44}(?![\w:]))"
_IPV4 = (
    r"(?P<ipv4>(?<![\w.])(?<![A-Za-z]/)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
    r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d))"
)
# Digit runs with optional single separators: cards (Luhn), then phones.
_DIGITS = r"(?P<digits>(?<![\w.:/+%-])\+?\(?\d[\d\s().+-]{5,24}\d(?![\w/]|[.:]\d))"
# A `tel:` URI (RFC 3966): the colon before it keeps _DIGITS off, so it has its own pass.
TEL_URI = re.compile(r"\b[Tt][Ee][Ll]:(?P<number>\+?\d[\d().-]{5,24}\d)(?![\w/]|[.:]\d)")

# E-mail runs alone, and only on lines with an '@' (or %40): its pattern is the costliest.
EMAIL_PATTERN = re.compile(_EMAIL)
COMBINED = re.compile("|".join([_IBAN, _IPV6, _IPV4, _DIGITS]))

CARD_PREFIXES = (
    ("4",),  # Visa
    tuple(str(n) for n in range(51, 56)) + tuple(str(n) for n in range(2221, 2721)),  # MC
    ("34", "37"),  # Amex
    ("6011", "65") + tuple(str(n) for n in range(644, 650)),  # Discover
    tuple(str(n) for n in range(3528, 3590)),  # JCB
    ("36", "38", "39") + tuple(str(n) for n in range(300, 306)),  # Diners
    ("62", "81"),  # UnionPay
    ("50", "56", "57", "58", "6304", "6759", "676770", "676774"),  # Maestro
)
_ALL_CARD_PREFIXES = tuple(p for group in CARD_PREFIXES for p in group)

# Words next to a number that make it a phone number in logs.
PHONE_CONTEXT = re.compile(
    r"(?i)(phone|tel|mobile|mob|cell|msisdn|sms|whatsapp|call(?:er|ee|back)?|fax|contact|"
    r"number|dial|to|from|otp|2fa|verify|verification)\W{0,4}$"
)
PHONE_REGIONS = (
    "GB",
    "US",
    "DE",
    "FR",
    "ES",
    "IT",
    "NL",
    "BE",
    "AT",
    "CH",
    "IE",
    "PT",
    "SE",
    "DK",
    "FI",
    "NO",
    "PL",
    "CZ",
    "GR",
    "HU",
    "RO",
    "BG",
    "HR",
    "SK",
    "SI",
    "LT",
    "LV",
    "EE",
    "LU",
    "MT",
    "CY",
    "IS",
    "CA",
    "AU",
    "BR",
    "IN",
    "JP",
    "KR",
    "MX",
    "NG",
    "PH",
    "SG",
    "TR",
    "ZA",
    "KE",
)
_DOTTED_PHONE = re.compile(r"\+?\(?\d{2,4}\)?(?:\.\d{2,4}){2,4}")
_DATE_LIKE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_ok(raw: str) -> bool:
    """13-19 digits, one kind of separator used in groups, a known issuer prefix, Luhn."""
    if any(c not in "0123456789 -" for c in raw):
        return False
    seps = {c for c in raw if c in " -"}
    if len(seps) > 1 or "  " in raw or "--" in raw:
        return False
    digits = raw.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or not digits.startswith(_ALL_CARD_PREFIXES):
        return False
    if seps and any(len(g) < 3 for g in re.split(r"[ -]", raw)):
        return False
    return luhn_ok(digits)


def iban_span(text: str, start: int, end: int) -> int | None:
    """End of the longest valid IBAN starting at `start` (a trailing word is not swallowed)."""
    candidate = text[start:end]
    # Shrink from the right, group by group, until the checksum and country format hold.
    for stop in range(len(candidate), 14, -1):
        chunk = candidate[:stop]
        if chunk.endswith(" "):
            continue
        if stop < len(candidate) and candidate[stop] != " " and candidate[stop - 1] != " ":
            # Only cut at a group boundary or at the end of the compact form.
            if " " in candidate[:stop]:
                continue
        # Structure and mod-97 only: national check digits vary by bank and are not needed.
        if stdnum_iban.is_valid(chunk.replace(" ", ""), check_country=False):
            return start + stop
    return None


def phone_ok(raw: str, before: str) -> bool:
    """A real number for some region: international always; national needs context or shape."""
    return _phone_ok(raw, PHONE_CONTEXT.search(before) is not None)


@functools.lru_cache(maxsize=8192)
def _phone_ok(raw: str, context: bool) -> bool:
    text = raw
    if "+" in text[1:]:  # URL-encoded spaces in a query string: 222+102+4237
        text = text[0] + text[1:].replace("+", " ")
    digits = sum(c.isdigit() for c in text)
    if digits < 7 or digits > 15 or _DATE_LIKE.match(text):
        return False
    if text.count("(") != text.count(")"):
        return False
    if "." in text and not _DOTTED_PHONE.fullmatch(text):
        return False  # versions, amounts, build numbers: 10.0.21660.3546
    if text.startswith("+"):
        try:
            number = phonenumbers.parse(text.replace("+", "", text.count("+") - 1), None)
        except phonenumbers.NumberParseException:
            return False
        return phonenumbers.is_valid_number(number)
    groups = [g for g in re.split(r"[\s().-]+", text) if g]
    formatted = len(groups) >= 2 and all(g.isdigit() for g in groups)
    national_prefix = text.lstrip("(").startswith("0") or text.startswith("(")
    if not formatted and not context:
        return False
    if not national_prefix and not context and len(groups) < 3:
        return False
    for region in PHONE_REGIONS:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False


class LogPatterns:
    """E-mail, IP (v4/v6), credit card, IBAN and phone in one pass over the line (as a
    Presidio recognizer: privacy.scrubber.presidio.LogPatternRecognizer)."""

    ENTITIES = [EMAIL, IP, CARD, IBAN, PHONE]

    def scan(self, text: str) -> list[Result]:
        results = []
        emails: list[tuple[int, int]] = []
        if "@" in text or "%40" in text:
            for match in EMAIL_PATTERN.finditer(text):
                emails.append(match.span())
                results.append(Result(EMAIL, *match.span(), 1.0))
        for match in COMBINED.finditer(text):
            kind = match.lastgroup
            start, end = match.span()
            value = match.group()
            if emails and any(s < end and start < e for s, e in emails):
                continue
            if kind == "iban":
                stop = iban_span(text, start, end)
                if stop is not None:
                    results.append(Result(IBAN, start, stop, 1.0))
            elif kind == "ipv6":
                value = ipv6_value(value.rstrip("."))
                if value:
                    results.append(Result(IP, start, start + len(value), 0.95))
            elif kind == "ipv4":
                address = ipaddress.IPv4Address(value)
                if not (address.is_loopback or address.is_unspecified):  # identify no one
                    results.append(Result(IP, start, end, 0.95))
            else:
                stripped = value.rstrip(" .-(")
                end = start + len(stripped)
                if stripped.startswith("(") and stripped.count("(") > stripped.count(")"):
                    stripped, start = stripped[1:], start + 1
                if card_ok(stripped):
                    results.append(Result(CARD, start, end, 1.0))
                    continue
                if phone_ok(stripped, text[max(0, start - 20) : start]):
                    if stripped.startswith("(") is False and text[start - 1 : start] == "(":
                        start -= 1
                    results.append(Result(PHONE, start, end, 0.85))
        if "tel:" in text or "TEL:" in text:
            for match in TEL_URI.finditer(text):
                if phone_ok(match.group("number"), "tel:"):
                    results.append(Result(PHONE, *match.span("number"), 0.85))
        return results


def ipv6_value(value: str) -> str | None:
    """The IPv6 address `value` starts with, or None.

    Apache writes a client as `2001:db8::7:51234`, the port after a colon and no brackets:
    when the whole is no address, the last group is dropped. Eight groups of two hex digits
    are bytes (certificate serials, key fingerprints), not an address. Loopback and
    unspecified addresses (`::1`, `::`) identify no one.
    """
    if value.count(":") < 2:
        return None
    address = _ipv6(value)
    if address is None and value.count(":") > 2:
        value = value.rsplit(":", 1)[0]
        address = _ipv6(value)
    if address is None or address.is_loopback or address.is_unspecified:
        return None
    if "::" not in value and all(len(group) == 2 for group in value.split(":")):
        return None
    return value


def _ipv6(value: str) -> ipaddress.IPv6Address | None:
    try:
        return ipaddress.IPv6Address(value)
    except ValueError:
        return None


class CustomPatterns:
    """The custom patterns and deny lists of one configuration; thread-safe, reusable."""

    def __init__(self, patterns: dict[str, list[str]], deny: dict[str, list[str]]) -> None:
        self.programs: list[tuple[str, object]] = []
        self.legacy: list[tuple[str, object]] = []
        for entity, expressions in patterns.items():
            for expression in expressions:
                try:
                    self.programs.append((entity, custom.compile_pattern(expression)))
                except re2.error:
                    try:
                        program = regex.compile(expression, custom.LEGACY_FLAGS)
                    except regex.error:
                        program = None  # every text it should read stays unscrubbed
                    self.legacy.append((entity, program))
        self.deny = [
            (entity, custom.deny_program(values), {v.lower() for v in values})
            for entity, values in deny.items()
            if values
        ]

    def __bool__(self) -> bool:
        return bool(self.programs or self.legacy or self.deny)

    def scan(self, text: str, timeout: float | None = None) -> list[Result]:
        """Findings of every custom pattern and deny list in `text`.

        Raises Unfinished when a stored pattern RE2 cannot run takes longer than `timeout`
        seconds (LEGACY_TIMEOUT of privacy.scrubber.patterns when None), or cannot be read at all.
        """
        results = []
        for entity, program in self.programs:
            results.extend(
                Result(entity, m.start(), m.end(), custom.PATTERN_SCORE)
                for m in program.finditer(text)
                if m.end() > m.start()
            )
        for entity, program, values in self.deny:
            for match in program.finditer(text):
                start, end = match.span(1)
                end = self._whole_word(text, start, end, values)
                if end is not None:
                    results.append(Result(entity, start, end, custom.DENY_SCORE))
        for entity, program in self.legacy:
            if program is None:
                raise custom.Unfinished()
            limit = custom.LEGACY_TIMEOUT if timeout is None else max(timeout, 0.001)
            try:
                results.extend(
                    Result(entity, m.start(), m.end(), custom.PATTERN_SCORE)
                    for m in program.finditer(text, timeout=limit)
                    if m.end() > m.start()
                )
            except TimeoutError:
                raise custom.Unfinished() from None
        return results

    @staticmethod
    def _whole_word(text: str, start: int, end: int, values: set[str]) -> int | None:
        """End of the deny value at `start` that is a whole word: the match RE2 found, or
        a shorter value ending at a word boundary inside it; None when there is none."""
        if end >= len(text) or not custom.is_word(text[end]):
            return end
        for stop in range(end - 1, start, -1):
            if not custom.is_word(text[stop]) and text[start:stop].lower() in values:
                return stop
        return None
