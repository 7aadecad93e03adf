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

This module compiles and checks (the settings API uses it without Presidio); the recognizer
that runs them over text is privacy.scrubber.recognizers.CustomPatterns.
"""

from __future__ import annotations

import re2
import regex

PATTERN_SCORE = 0.9
DENY_SCORE = 1.0
LEGACY_TIMEOUT = 1.0
# Presidio's flags for custom patterns, as the `regex` module spells them.
LEGACY_FLAGS = regex.DOTALL | regex.MULTILINE | regex.IGNORECASE


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
        deny_program(values)
    except re2.error as exc:
        return f"the list is too large to match ({_message(exc)})"
    return None


def deny_program(values: list[str]):
    # Longest first: at one position the longest value wins, as a whole word.
    alternatives = "|".join(re2.escape(v) for v in sorted(set(values), key=len, reverse=True))
    return re2.compile(r"(?:^|[^\p{L}\p{N}_])(" + alternatives + ")", _options(32 << 20))


def is_word(char: str) -> bool:
    return char.isalnum() or char == "_"
