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
from privacy.scrubber import prefilter
from privacy.scrubber.config import CARD
from privacy.scrubber.config import EMAIL
from privacy.scrubber.config import IBAN
from privacy.scrubber.config import IP
from privacy.scrubber.config import PHONE
from privacy.scrubber.results import Result

# E-mail, also URL-encoded (%40) as in query strings; the local part may carry %2B etc.
_EMAIL = r"(?P<email>[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}(?:@|%40)(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24})"
_IBAN = r"(?P<iban>\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b)"
# An address has `::` or at least six groups before its last (eight groups, or six and an
# IPv4 tail): a time of day (`12:04:33`) is not even a candidate.
_IPV6_SHAPE = r"(?=[0-9A-Fa-f:.]*::|(?:[0-9A-Fa-f]{1,4}:){6})"
_IPV6 = (
    r"(?P<ipv6>(?<![\w:.])" + _IPV6_SHAPE + r"(?:[0-9A-Fa-f]{1,4}:|::)[0-9A-Fa-f:.]{2,44}(?![\w:]))"
)
# An IPv6 address right after a label and a colon, as macOS and others write an interface's
# address (`v6(en0:2001:db8::1)`, also `en0!:`): the colon is a separator there, not part of
# the address. Taken only where the word before the colon cannot be a group of the address
# (see _after_label), so the middle of an address is never read as a new one.
_IPV6_AFTER_LABEL = (
    r"(?P<ipv6label>(?<=[^\s:.]:)"
    + _IPV6_SHAPE
    + r"(?:[0-9A-Fa-f]{1,4}:|::)[0-9A-Fa-f:.]{2,44}(?![\w:]))"
)
# What looks like an address may be a version, a network or a mask: ipv4_personal decides.
_IPV4 = (
    r"(?P<ipv4>(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
    r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d))"
)
# Digit runs with optional single separators: cards (Luhn), then phones. Not from a `(`
# that opens a dotted quad: `(81.2.69.142)` is an address for _IPV4. At least seven digits
# (no phone number has fewer), so a shorter run takes no characters from the other kinds.
_DIGITS = (
    r"(?P<digits>(?<![\w.:/+%-])\+?(?:\((?!\d{1,3}(?:\.\d{1,3}){3}(?!\d|\.\d)))?"
    r"(?=\d(?:[\s().+-]*\d){6})\d[\d\s().+-]{5,24}\d(?![\w/]|[.:]\d))"
)
# A `tel:` URI (RFC 3966): the colon before it keeps _DIGITS off, so it has its own pass.
TEL_URI = re.compile(r"\b[Tt][Ee][Ll]:(?P<number>\+?\d[\d().-]{5,24}\d)(?![\w/]|[.:]\d)")

# E-mail runs alone, and only on lines with an '@' (or %40): its pattern is the costliest.
EMAIL_PATTERN = re.compile(_EMAIL)
# The other kinds, in the order they claim a position: where two could start at the same
# character, the earlier kind takes it, and what it took no other kind reads (see _candidates).
KINDS = ("iban", "ipv6", "ipv6label", "ipv4", "digits")
KIND_PATTERNS = {
    kind: re.compile(pattern)
    for kind, pattern in zip(KINDS, (_IBAN, _IPV6, _IPV6_AFTER_LABEL, _IPV4, _DIGITS), strict=True)
}
# The same kinds as one alternation: the reading _candidates gives, kind by kind and only for
# the kinds a line's gates leave open (tests/scrubber/test_prefilter.py holds it to this).
COMBINED = re.compile("|".join([_IBAN, _IPV6, _IPV6_AFTER_LABEL, _IPV4, _DIGITS]))

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
_PHONE_WORDS = (
    "phone tel mobile mob cell msisdn sms whatsapp call caller callee callback fax contact "
    "number dial to from otp 2fa verify verification"
).split()
# Read backwards from the number: a match at the start of the reversed text, so the regex
# never walks the whole text before it.
_PHONE_CONTEXT_REVERSED = re.compile(
    r"(?i)\W{0,4}(?:" + "|".join(w[::-1] for w in _PHONE_WORDS) + r")"
)


def phone_context(before: str) -> bool:
    """Whether `before` ends in a phone word and at most four other characters."""
    return _PHONE_CONTEXT_REVERSED.match(before[::-1]) is not None


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


def _date_and_time(groups: list[str]) -> bool:
    """Whether the first two groups read as a date (yymmdd, ddmmyy, yyyymmdd) and a time of
    day (hhmm or hhmmss)."""
    if len(groups) < 2 or len(groups[0]) not in (6, 8) or len(groups[1]) not in (4, 6):
        return False
    if not (groups[0].isdigit() and groups[1].isdigit()):
        return False
    day = groups[0]
    if len(day) == 6:
        dates = [(day[2:4], day[4:6]), (day[2:4], day[0:2])]  # yymmdd, ddmmyy
    else:
        dates = [(day[4:6], day[6:8])]  # yyyymmdd
    if not any(1 <= int(m) <= 12 and 1 <= int(d) <= 31 for m, d in dates):
        return False
    clock = groups[1]
    return int(clock[0:2]) < 24 and all(int(clock[i : i + 2]) < 60 for i in range(2, len(clock), 2))


def phone_ok(raw: str, before: str) -> bool:
    """A real number for some region: international always; national needs context or shape."""
    return _phone_ok(raw, phone_context(before))


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
    if not context and _date_and_time(groups):
        return False  # a log line's header: `081109 203615 148` is a date, a time, a thread
    if any(len(g) == 1 for g in groups[1:]) or (len(groups[0]) == 1 and groups[0] not in "01"):
        # Written phone numbers group digits in twos and more (a lone leading 1 or 0 is a
        # trunk prefix); single digits are a list of small numbers: IRQs, channels, CPUs.
        return False
    if not national_prefix and not context and len({len(g) for g in groups}) == 1:
        # Three or more groups of one length, no trunk prefix, no phone word: a list of
        # readings (fan speeds, counters), not a national number (3-3-4, 3-2-2-2, ...).
        return False
    for region in PHONE_REGIONS:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False


# A dotted quad after one of these words is a version, not an address: `version 0.0.0.6`,
# `build 10.0.19041.1`, `v=2.1.0.4`, and the end of a Windows package identity
# `Package_for_KB1234567~0123456789abcdef~amd64~~7.2.1.0`. (A lone `v ` is not: `ssh -v`.)
_VERSION_BEFORE = re.compile(
    r"(?i)(?:\b(?:version|ver|vers|build|revision|firmware)\b[ \t=:#]{0,3}|\bv[=:#]|~)$"
)
# After these words a dotted quad is a network or a mask, which names no host: `on network
# 10.128.0.0`, `netmask 255.255.255.0`. A network number ends in .0; a mask is never a host.
_NETWORK_BEFORE = re.compile(r"(?i)\b(?:network|subnet|net|route)[ \t=:]{1,3}$")
_MASK_BEFORE = re.compile(r"(?i)(?:\b|_)(?:netmask|mask)[ \t=:]{1,3}$")
_PREFIX_AFTER = re.compile(r"/(\d{1,2})(?!\d|\.\d)")
# A dash and a short number, or a plus and a word, after four numbers: a package's revision
# (Debian `1.2.5.1-2`, `2.4.1.0+dfsg`). A dash and another address is a range, not this.
_REVISION_AFTER = re.compile(r"-\d{1,4}(?![\d.])|\+[A-Za-z0-9]")
_PORT_AFTER = re.compile(r":\d{1,5}(?!\d)")
_HOST_BEFORE_SLASH = re.compile(r"[\w.-]*$")
# 0.0.0.0/8 is "this host on this network" (RFC 1122): never on the wire as a host's address.
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")


def _host_address(address: ipaddress.IPv4Address) -> bool:
    """Whether the address can be a host's: not loopback or unspecified (identify no one),
    not multicast (a group), not 240.0.0.0/4 (never assigned; netmasks fall there), not
    0.0.0.0/8 ("this network")."""
    return not (
        address.is_loopback
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or address in _THIS_NETWORK
    )


def ipv4_personal(text: str, start: int, end: int) -> bool:
    """Whether the dotted quad text[start:end] is a host's address, not one of its
    look-alikes (a version, a network number, a mask, a product/version pair)."""
    if not _host_address(ipaddress.IPv4Address(text[start:end])):
        return False
    before = text[max(0, start - 16) : start]
    if _VERSION_BEFORE.search(before) or _MASK_BEFORE.search(before):
        return False
    if _NETWORK_BEFORE.search(before) and text[start:end].endswith(".0"):
        return False
    if _REVISION_AFTER.match(text, end):
        return False  # a package version and its revision: `1.2.5.1-2`, `2.4.1.0+dfsg`
    prefix = _PREFIX_AFTER.match(text, end)
    if prefix:
        # `81.2.0.0/16` is a network; `81.2.69.142/24` (an interface's address with its
        # prefix length, as `ip addr` prints it) is a host's address.
        try:
            ipaddress.IPv4Network(f"{text[start:end]}/{prefix.group(1)}")
        except ValueError:
            return True
        return int(prefix.group(1)) == 32
    if before.endswith("/") and before[-2:-1].isalpha():
        # `Chrome/120.0.1.2` is a product and its version; `gateway-a/81.2.69.142:8030` (Java
        # prints a socket address as host/address:port), `host.example/81.2.69.142` and
        # `/lookup/81.2.69.142` are a host name or a path and an address: a port after it,
        # a dot, digit or underscore in the name (product names have none: squid's
        # `HIER_DIRECT/81.2.69.142`), or a slash before it.
        name = _HOST_BEFORE_SLASH.search(before[:-1])
        return (
            bool(_PORT_AFTER.match(text, end))
            or any(c in "._" or c.isdigit() for c in name.group())
            or before[: name.start()].endswith("/")
        )
    return True


_HEX = frozenset("0123456789abcdefABCDEF")


def _after_label(text: str, start: int) -> bool:
    """Whether the colon before `start` ends a label (`en0:`, `en0!:`) rather than a group
    of an address that started earlier: the word before it is not all hex digits."""
    stop = start - 1
    first = stop
    while first > 0 and (text[first - 1].isalnum() or text[first - 1] == "_"):
        first -= 1
    word = text[first:stop]
    return not word or any(c not in _HEX for c in word)


# A run of numbers (a list of fan speeds, IRQs, channels) is not a phone number, however
# its pieces read: a phone number stands alone, not between other numbers.
_NUMBER_BEFORE = re.compile(r"\d[ \t]{1,2}$")
_NUMBER_AFTER = re.compile(r"[ \t]{1,2}\d")
# A number glued to a hex word by a dash or colon is a piece of a hardware address or id
# (`84-41-67-32-db-e1`).
_HEX_AFTER = re.compile(r"[-:][0-9A-Fa-f]{2}(?![0-9A-Za-z])")


def in_number_list(text: str, start: int, end: int) -> bool:
    """Whether the digits at text[start:end] are a piece of a longer run: other numbers
    right before or after them, or a hex word glued after them."""
    if start and _NUMBER_BEFORE.search(text, max(0, start - 3), start):
        return True
    return bool(_NUMBER_AFTER.match(text, end) or _HEX_AFTER.match(text, end))


# Addresses inside host names. Reverse DNS names an ISP's customers after their address:
# dotted (`host81.2.69.142.example.net`, also with zero-padded numbers), dashed
# (`dsl-81-2-69-142.example.net`, `ec2-81-2-69-142.compute.example`, `h81-2-69-142...`
# with the first number glued to a word) or packed into twelve digits (`n081002069142.
# example.net`). Only the numbers are replaced, so the rest of the name stays readable.
# The hint finds lines that may hold one; host_name_addresses reads them.
_HOST_NAME_HINT = re.compile(
    r"\d-\d{1,3}-\d{1,3}-\d|[A-Za-z_-]\d{1,3}\.\d{1,3}\.\d{1,3}\.\d|\d{12}\.[A-Za-z]"
    r"|(?<![\d.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.[A-Za-z]"
)
# A host-name-like token: letters, digits, dots, dashes and underscores, with a letter;
# not after `%` (`phone=%2B46-8-12-88-51` is a URL-encoded value, not a name).
_HOST_TOKEN = re.compile(r"(?<![\w.%-])[A-Za-z0-9][\w.-]*[A-Za-z0-9]")
_ATOM = re.compile(r"[^.-]+")
# Dotted numbers glued to a word or zero-padded, followed by more of the name.
_GLUED_DOTTED = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?=\.[A-Za-z])")
_DOMAIN_AFTER = re.compile(r"\.[A-Za-z]")
_PACKED = re.compile(r"(?<!\d)(\d{12})(?=\.[A-Za-z])")
# A file name is not a host name: `backup-10-2-3-4.tar.gz`, `lib-1.2.3.4.so`.
_FILE_SUFFIX = re.compile(
    r"(?i)\.(?:tar|gz|tgz|bz2|xz|zip|7z|rar|jar|war|ear|so|dll|exe|msi|dylib|rpm|deb|apk|whl|"
    r"egg|pkg|dmg|iso|img|bin|log|txt|csv|json|xml|ya?ml|conf|cfg|ini|py|js|class|html?|pdf)$"
)
# Six or more pairs of hex digits joined by one separator: a MAC or EUI-64, not an address.
_HARDWARE = re.compile(
    r"(?<![0-9A-Fa-f:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4,}[0-9A-Fa-f]{2}"
    r"(?![0-9A-Fa-f]|\1[0-9A-Fa-f])"
)


def host_name_addresses(text: str) -> list[tuple[int, int]]:
    """(start, end) of the IPv4 addresses written inside host names in `text`, the numbers
    only; a name's own dotted address at a word boundary is left to the dotted pattern."""
    out = []
    hardware = [m.span() for m in _HARDWARE.finditer(text)]
    for token in _HOST_TOKEN.finditer(text):
        name = token.group()
        if not any(c.isalpha() for c in name) or _FILE_SUFFIX.search(name):
            continue
        base = token.start()
        # Dashed numbers count in a DNS name, with a domain after them: without one,
        # `kernel-5-15-0-91-generic` is more likely a version than an address. A private
        # address needs none: cloud and DHCP names are bare (`ip-10-0-1-23`, a laptop's
        # `guest-10-12-161-3`), and versions seldom start 10, 172.16-31 or 192.168.
        found = [d for d in _dashed(name) if _DOMAIN_AFTER.search(name, d[1]) or _rfc1918(d[2])]
        for m in _GLUED_DOTTED.finditer(name):
            glued = m.start() > 0 and (name[m.start() - 1].isalpha() or name[m.start() - 1] in "_-")
            padded = any(len(o) > 1 and o.startswith("0") for o in m.groups())
            if glued or padded:  # else the dotted pattern has it
                found.append((m.start(), m.end(), list(m.groups())))
        for m in _PACKED.finditer(name):
            digits = m.group(1)
            found.append((m.start(), m.end(), [digits[i : i + 3] for i in range(0, 12, 3)]))
        for a, b, octets in found:
            start, end = base + a, base + b
            if any(s <= start and end <= e for s, e in hardware):
                continue
            if any(int(o) > 255 for o in octets):
                continue
            if _host_address(ipaddress.IPv4Address(".".join(str(int(o)) for o in octets))):
                out.append((start, end))
    return out


_RFC1918 = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


def _rfc1918(octets: list[str]) -> bool:
    if any(int(o) > 255 for o in octets):
        return False
    address = ipaddress.IPv4Address(".".join(str(int(o)) for o in octets))
    return any(address in network for network in _RFC1918)


_VERSION_WORD = re.compile(r"(?i)(?:v|ver|version|release|rel|build|rc|r)\d{0,3}")


def _dashed(name: str) -> list[tuple[int, int, list[str]]]:
    """Four numbers of at most three digits joined by dashes (`cust-81-2-69-142-st`), or
    three after a word ending in the first one (`h81-2-69-142`). Five or more numbers in a
    row are something else (a date and a time, a range)."""
    atoms = [(m.start(), m.end(), m.group()) for m in _ATOM.finditer(name)]
    out = []
    i = 0
    while i < len(atoms):
        j = i
        while (
            j < len(atoms)
            and atoms[j][2].isdigit()
            and len(atoms[j][2]) <= 3
            and (j == i or name[atoms[j][0] - 1] == "-")
        ):
            j += 1
        run = atoms[i:j]
        joined = i > 0 and name[atoms[i][0] - 1] == "-"
        if joined and atoms[i - 1][2].isdigit() or j < len(atoms) and atoms[j][2].isdigit():
            pass  # more numbers around the run (`2016-09-28-10-12`): not an address
        elif joined and _VERSION_WORD.fullmatch(atoms[i - 1][2]):
            pass  # `release-1-2-3-4`, `v1-2-3-4`: a version written with dashes
        elif len(run) == 4:
            out.append((run[0][0], run[-1][1], [a[2] for a in run]))
        elif len(run) == 3 and joined:
            first = re.search(r"(?<=[A-Za-z])\d{1,3}$", atoms[i - 1][2])
            if first:
                start = atoms[i - 1][0] + first.start()
                out.append((start, run[-1][1], [first.group()] + [a[2] for a in run]))
        i = max(j, i + 1)
    return out


# Gates (privacy.scrubber.prefilter): what a line must hold for a kind to find anything
# there. An IBAN opens with a country and two digits and has at least 15 characters; an
# IPv6 address has the shape _IPV6_SHAPE asks for; a dotted quad has four numbers; a card
# or phone number has at least seven digits (only separators between them).
_S = prefilter.SPACE
GATES = {
    prefilter.IBAN: r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11}",
    prefilter.IPV6: r"::|(?:[0-9A-Fa-f]{1,4}:){6}",
    prefilter.IPV4: r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]",
    prefilter.DIGITS: r"[0-9](?:(?:" + _S + r"|[().+-])*[0-9]){6}",
    prefilter.HOST_NAME: r"[0-9]-[0-9]{1,3}-[0-9]{1,3}-[0-9]|[A-Za-z_-][0-9]{1,3}\.[0-9]{1,3}"
    r"\.[0-9]{1,3}\.[0-9]|[0-9]{12}\.[A-Za-z]|[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"
    r"\.[A-Za-z]",
}
_KIND_GATES = (
    ("iban", prefilter.IBAN),
    ("ipv6", prefilter.IPV6),
    ("ipv6label", prefilter.IPV6),
    ("ipv4", prefilter.IPV4),
    ("digits", prefilter.DIGITS),
)


_ALL_KIND_GATES = prefilter.IBAN | prefilter.IPV6 | prefilter.IPV4 | prefilter.DIGITS


@functools.cache
def _kinds(gates: int) -> tuple[str, ...]:
    return tuple(kind for kind, bit in _KIND_GATES if gates & bit)


class LogPatterns:
    """E-mail, IP (v4/v6), credit card, IBAN and phone in one pass over the line (as a
    Presidio recognizer: privacy.scrubber.presidio.LogPatternRecognizer)."""

    ENTITIES = [EMAIL, IP, CARD, IBAN, PHONE]

    def scan(self, text: str, gates: int = prefilter.ALL) -> list[Result]:
        """Findings in `text`; `gates` (prefilter bits) skips the kinds that cannot match."""
        results = []
        emails: list[tuple[int, int]] = []
        if "@" in text or "%40" in text:
            for match in EMAIL_PATTERN.finditer(text):
                emails.append(match.span())
                results.append(Result(EMAIL, *match.span(), 1.0))
        kinds = _kinds(gates & _ALL_KIND_GATES)
        for kind, match in _candidates(text, kinds) if kinds else ():
            start, end = match.span()
            value = match.group()
            if emails and any(s < end and start < e for s, e in emails):
                continue
            if kind == "iban":
                stop = iban_span(text, start, end)
                if stop is not None:
                    results.append(Result(IBAN, start, stop, 1.0))
            elif kind == "ipv6" or (kind == "ipv6label" and _after_label(text, start)):
                value = ipv6_value(value.rstrip("."))
                if value:
                    results.append(Result(IP, start, start + len(value), 0.95))
            elif kind == "ipv4":
                if ipv4_personal(text, start, end):
                    results.append(Result(IP, start, end, 0.95))
            elif kind == "digits":
                stripped = value.rstrip(" .-(")
                end = start + len(stripped)
                if stripped.startswith("(") and stripped.count("(") > stripped.count(")"):
                    stripped, start = stripped[1:], start + 1
                if len(stripped) < 7 or _DATE_LIKE.match(stripped):
                    continue  # too short for 7 digits, or a date: neither a card nor a phone
                if card_ok(stripped):
                    results.append(Result(CARD, start, end, 1.0))
                    continue
                before = text[max(0, start - 20) : start]
                if phone_ok(stripped, before) and not (
                    not stripped.startswith("+")
                    and not phone_context(before)
                    and in_number_list(text, start, end)
                ):
                    if stripped.startswith("(") is False and text[start - 1 : start] == "(":
                        start -= 1
                    results.append(Result(PHONE, start, end, 0.85))
        if gates & prefilter.HOST_NAME and _HOST_NAME_HINT.search(text):
            results.extend(Result(IP, a, b, 0.9) for a, b in host_name_addresses(text))
        if "tel:" in text or "TEL:" in text:
            for match in TEL_URI.finditer(text):
                if phone_ok(match.group("number"), "tel:"):
                    results.append(Result(PHONE, *match.span("number"), 0.85))
        return results


def _candidates(text: str, kinds: tuple[str, ...]) -> list[tuple[str, re.Match]]:
    """The matches COMBINED would give, of the given kinds only: each kind searched on its
    own, then merged as the alternation would take them (leftmost first, the earlier kind
    on a tie, nothing that starts inside a match already taken)."""
    if len(kinds) == 1:
        kind = kinds[0]
        return [(kind, m) for m in KIND_PATTERNS[kind].finditer(text)]
    ahead = {}
    for kind in kinds:
        match = KIND_PATTERNS[kind].search(text)
        if match is not None:
            ahead[kind] = match
    out = []
    while ahead:
        kind = min(ahead, key=lambda k: (ahead[k].start(), KINDS.index(k)))
        match = ahead[kind]
        out.append((kind, match))
        pos = match.end()
        for other in list(ahead):
            if ahead[other].start() < pos:
                following = KIND_PATTERNS[other].search(text, pos)
                if following is None:
                    del ahead[other]
                else:
                    ahead[other] = following
    return out


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
