"""Custom patterns and deny lists, matched in linear time with RE2.

An account's patterns are compiled with RE2 (google-re2), whose matching time grows with
the length of the text only, whatever the pattern: no backtracking, so `(a|aa)+$` costs
what `a+$` costs. RE2 has no lookaround and no backreferences; `check` says so, and the
settings API refuses such a pattern with a 422. Patterns match case-insensitively, `.`
matches a newline and `^`/`$` match at line breaks (Presidio's flags, which applied
before). In RE2, `\\d`, `\\w` and `\\b` are ASCII; `\\p{L}` and `\\p{N}` are the Unicode
classes.

A stored pattern saved before RE2 (with a lookahead, say) still runs, with the `regex`
module Presidio uses and a timeout: the time left of the caller's budget, or
LEGACY_TIMEOUT seconds without one. When it times out, the text it was reading counts as
not scrubbed (the caller masks the whole line): a slow pattern never lets a line through.
A stored pattern no engine can read masks every line it would have read.

Deny lists are literal values matched as whole words, case-insensitively: one RE2
alternation per entity.
"""

from __future__ import annotations

import re2
import regex
from presidio_analyzer import RecognizerResult

PATTERN_SCORE = 0.9
DENY_SCORE = 1.0
LEGACY_TIMEOUT = 1.0
# Presidio's flags for custom patterns, as the `regex` module spells them.
_LEGACY_FLAGS = regex.DOTALL | regex.MULTILINE | regex.IGNORECASE


class Unfinished(Exception):
    """A stored pattern RE2 cannot run did not finish in time, or no engine can read it:
    the text is not scrubbed."""


def _options(max_mem: int = 8 << 20) -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.dot_nl = True
    options.log_errors = False  # RE2 would print the pattern to stderr
    options.max_mem = max_mem
    return options


def _message(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return str(detail) or type(exc).__name__


def compile_pattern(pattern: str):
    """The RE2 program of a custom pattern; raises re2.error when RE2 cannot run it."""
    return re2.compile("(?m)" + pattern, _options())


def check(pattern: str) -> str | None:
    """Why `pattern` cannot be a custom pattern, or None when it can."""
    try:
        compile_pattern(pattern)
    except re2.error as exc:
        return (
            f"{_message(exc)} (patterns use RE2 syntax: no lookahead, lookbehind or "
            "backreferences, repetitions of at most 1000)"
        )
    return None


def check_deny(values: list[str]) -> str | None:
    """Why a deny list cannot be compiled (too large), or None."""
    try:
        _deny_program(values)
    except re2.error as exc:
        return f"the list is too large to match ({_message(exc)})"
    return None


def _deny_program(values: list[str]):
    # Longest first: at one position the longest value wins, as a whole word.
    alternatives = "|".join(re2.escape(v) for v in sorted(set(values), key=len, reverse=True))
    return re2.compile(r"(?:^|[^\p{L}\p{N}_])(" + alternatives + ")", _options(32 << 20))


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


class CustomPatterns:
    """The custom patterns and deny lists of one configuration; thread-safe, reusable."""

    def __init__(self, patterns: dict[str, list[str]], deny: dict[str, list[str]]) -> None:
        self.programs: list[tuple[str, object]] = []
        self.legacy: list[tuple[str, object]] = []
        for entity, expressions in patterns.items():
            for expression in expressions:
                try:
                    self.programs.append((entity, compile_pattern(expression)))
                except re2.error:
                    try:
                        program = regex.compile(expression, _LEGACY_FLAGS)
                    except regex.error:
                        program = None  # every text it should read stays unscrubbed
                    self.legacy.append((entity, program))
        self.deny = [
            (entity, _deny_program(values), {v.lower() for v in values})
            for entity, values in deny.items()
            if values
        ]

    def __bool__(self) -> bool:
        return bool(self.programs or self.legacy or self.deny)

    def scan(self, text: str, timeout: float | None = None) -> list[RecognizerResult]:
        """Findings of every custom pattern and deny list in `text`.

        Raises Unfinished when a stored pattern RE2 cannot run takes longer than `timeout`
        seconds (LEGACY_TIMEOUT when None), or cannot be read at all.
        """
        results = []
        for entity, program in self.programs:
            results.extend(
                RecognizerResult(entity, m.start(), m.end(), PATTERN_SCORE)
                for m in program.finditer(text)
                if m.end() > m.start()
            )
        for entity, program, values in self.deny:
            for match in program.finditer(text):
                start, end = match.span(1)
                end = self._whole_word(text, start, end, values)
                if end is not None:
                    results.append(RecognizerResult(entity, start, end, DENY_SCORE))
        for entity, program in self.legacy:
            if program is None:
                raise Unfinished()
            limit = LEGACY_TIMEOUT if timeout is None else max(timeout, 0.001)
            try:
                results.extend(
                    RecognizerResult(entity, m.start(), m.end(), PATTERN_SCORE)
                    for m in program.finditer(text, timeout=limit)
                    if m.end() > m.start()
                )
            except TimeoutError:
                raise Unfinished() from None
        return results

    @staticmethod
    def _whole_word(text: str, start: int, end: int, values: set[str]) -> int | None:
        """End of the deny value at `start` that is a whole word: the match RE2 found, or
        a shorter value ending at a word boundary inside it; None when there is none."""
        if end >= len(text) or not _is_word(text[end]):
            return end
        for stop in range(end - 1, start, -1):
            if not _is_word(text[stop]) and text[start:stop].lower() in values:
                return stop
        return None
