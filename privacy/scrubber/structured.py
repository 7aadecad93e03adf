"""Replacement that keeps structured lines well-formed: a JSON line stays valid JSON with the
same keys and shape; logfmt keeps its keys because findings never cover a key or a quote."""

from __future__ import annotations

import bisect
import json
import re

from privacy.scrubber import anonymizer
from privacy.scrubber import operators

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _is_json(line: str) -> bool:
    stripped = line.strip()
    if not stripped.startswith(("{", "[")):
        return False
    try:
        json.loads(stripped)
    except ValueError:
        return False
    return True


def scrub(line: str, findings, operator: operators.Operator) -> str:
    """`line` with its findings replaced; JSON lines are handled string by string."""
    if not findings:
        return line
    if not _is_json(line):
        return anonymizer.apply(line, findings, operator)
    strings = [(m.start() + 1, m.end() - 1) for m in _JSON_STRING.finditer(line)]
    string_starts = [s for s, _ in strings]
    out, pos = [], 0
    for finding in findings:
        # Strings do not overlap: only the last one starting at or before the finding can hold it.
        k = bisect.bisect_right(string_starts, finding.start) - 1
        inside = strings[k] if k >= 0 and finding.start < strings[k][1] else None
        value = line[finding.start : finding.end]
        if inside is not None:
            # Never cut a string's closing quote, whatever the finding claimed.
            end = min(finding.end, inside[1])
            value = line[finding.start : end]
            replacement = operator.replacement(finding.entity_type, _unescape(value))
            replacement = json.dumps(replacement, ensure_ascii=False)[1:-1]
        else:
            # A bare JSON number or literal (a phone number as 447911123456) becomes a string.
            end = finding.end
            replacement = json.dumps(operator.replacement(finding.entity_type, value))
        if finding.start < pos:
            continue
        out.append(line[pos : finding.start])
        out.append(replacement)
        pos = end
    out.append(line[pos:])
    return "".join(out)


def _unescape(value: str) -> str:
    """The JSON string content as text, so pseudonyms of `\\u00e9` and `é` agree."""
    if "\\" not in value:
        return value
    try:
        return json.loads(f'"{value}"')
    except ValueError:
        return value
