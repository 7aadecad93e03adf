"""Which rules a line needs: one pass of a compiled multi-pattern matcher before the rules.

Most rules of the scrubber can only find something where a few characters say so: a dotted
quad, `::`, seven digits in a run, a known key before `=`, a phrase word. Python's `re`
pays for every position of every pattern, so asking each rule on each line costs more than
everything else together. Hyperscan (Intel's SIMD regex matcher, `hyperscan` on PyPI)
reads a line once for all those gates at once and says which rules need to run; the rules
themselves, with their look-arounds and validation, stay Python and decide as before.

A gate is a necessary condition, never a guess: each gate pattern matches wherever its
rule could find anything (its rule's matches contain a match of the gate). So a line
scanned with gates gets exactly the findings it gets without them;
tests/scrubber/test_prefilter.py checks that on every labelled line we have. The patterns
are written for ASCII text (Python's `\\d`, `\\s` and `\\w` mean more outside ASCII), so a
line with any other character opens every gate, and so does every line where Hyperscan is
not installed (no wheel for the platform) or cannot run on the CPU.
"""

from __future__ import annotations

import threading

try:
    import hyperscan
except ImportError:  # no wheel for this platform: every gate stays open
    hyperscan = None

# Gate bits, one per rule family.
IBAN = 1 << 0
IPV6 = 1 << 1
IPV4 = 1 << 2
DIGITS = 1 << 3
HOST_NAME = 1 << 4
KEY = 1 << 5
ACCOUNT = 1 << 6
PHRASE = 1 << 7
VERB = 1 << 8
LITERAL = 1 << 9
IDENTIFIER = 1 << 10
CAPITAL_PAIR = 1 << 11
ESCAPE = 1 << 12
ALL = (1 << 13) - 1

# What Python's `\s` matches in ASCII text (Hyperscan's `\s` lacks \x1c-\x1f).
SPACE = r"[\t\n\v\f\r\x1c-\x1f ]"


class Prefilter:
    """Gates of a line as a bit mask. Thread-safe; build once per process and share."""

    def __init__(self, gates: dict[int, str], *, enabled: bool = True) -> None:
        self._gates = dict(gates)
        self._database = _compile(self._gates) if enabled else None
        self._local = threading.local()
        # Bits without a gate pattern are always open.
        self._always = ALL & ~sum(self._gates) if self._database is not None else ALL

    @property
    def active(self) -> bool:
        """Whether lines are really filtered (Hyperscan is installed and runs here)."""
        return self._database is not None

    def gates(self, text: str) -> int:
        """The bit mask of rule families that may find something in `text`."""
        if self._database is None or not text.isascii():
            return ALL
        found = [self._always]
        self._database.scan(
            text.encode("ascii"),
            match_event_handler=_on_match,
            context=found,
            scratch=self._scratch(),
        )
        return found[0]

    def _scratch(self):
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._database)
        return scratch


def _on_match(bit: int, start: int, end: int, flags: int, found: list[int]) -> None:
    found[0] |= bit


def _compile(gates: dict[int, str]):
    """A Hyperscan block-mode database of the gate patterns, or None where there is none."""
    if hyperscan is None:
        return None
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    bits = list(gates)
    try:
        database.compile(
            expressions=[gates[bit].encode("ascii") for bit in bits],
            ids=bits,
            elements=len(bits),
            flags=[hyperscan.HS_FLAG_SINGLEMATCH] * len(bits),
        )
    except hyperscan.HyperscanError:  # e.g. a CPU without the instructions it needs
        return None
    return database
