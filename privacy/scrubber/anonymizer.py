"""Findings replaced in a line, as an Operator says, the way Presidio's anonymizer does it.

The engine's findings are sorted and never overlap, so of Presidio's AnonymizerEngine only
two rules apply: neighbours of one type with nothing but spaces between them become one
replacement (its merge_entities_with_spaces), and every other finding is replaced alone by
the operator's text for its value. They are applied here directly, in one pass: the
anonymizer copies the text once per finding (the square of their number on a long line),
and importing it loads presidio-analyzer and spaCy (about 1.7 s and 80 MB) into a process
that may need neither. tests/scrubber/test_anonymizer.py holds the result to Presidio's own
on every labelled line and every operator.
"""

from __future__ import annotations

from privacy.scrubber.operators import Operator


def apply(text: str, findings, operator: Operator) -> str:
    """The text with every finding replaced as `operator` says (offsets as found; sorted by
    start and not overlapping, as the engine gives them)."""
    out: list[str] = []
    pos = 0
    for entity, start, end in _join_spaced(text, findings):
        out.append(text[pos:start])
        out.append(operator.replacement(entity, text[start:end]))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _join_spaced(text: str, findings) -> list[tuple[str, int, int]]:
    """(entity, start, end) per replacement: neighbours of one type with only spaces between
    them joined into one (the anonymizer's merge_entities_with_spaces rule)."""
    out: list[tuple[str, int, int]] = []
    for f in findings:
        if out:
            entity, start, end = out[-1]
            gap = text[end : f.start]
            if entity == f.entity_type and gap and not gap.strip(" "):
                out[-1] = (entity, start, f.end)
                continue
        out.append((f.entity_type, f.start, f.end))
    return out
