"""Findings replaced in a line, through Presidio's anonymizer, as an Operator says.

Presidio's anonymizer is imported with the first line that has a finding to replace, not
with this module: it imports presidio-analyzer and spaCy (about 1.7 s and 80 MB), which a
process whose log lines hold no personal data (the log safety net's usual day) never needs.
"""

from __future__ import annotations

from privacy.scrubber.operators import Operator
from privacy.scrubber.results import Result

# Most findings handed to the anonymizer at once (see apply).
SEGMENT_FINDINGS = 64

_engine = None  # Presidio's AnonymizerEngine, made on the first replacement


def apply(text: str, findings, operator: Operator) -> str:
    """The text with every finding replaced as `operator` says (offsets as found).

    `findings` are sorted by start and do not overlap (the engine's). The anonymizer copies
    the text once per finding and joins neighbours one list search at a time, so a long
    text with many findings would cost the square of their number: findings of one type
    separated by spaces alone are joined here first (as the anonymizer would), and the rest
    goes through it in segments of at most SEGMENT_FINDINGS findings. Same result, linear.
    """
    spans = _join_spaced(text, findings)
    if len(spans) <= SEGMENT_FINDINGS:
        return _apply(text, spans, operator)
    out, pos = [], 0
    for first in range(0, len(spans), SEGMENT_FINDINGS):
        group = spans[first : first + SEGMENT_FINDINGS]
        cut = len(text) if first + SEGMENT_FINDINGS >= len(spans) else group[-1].end
        out.append(_apply(text[pos:cut], [_shift(f, -pos) for f in group], operator))
        pos = cut
    return "".join(out)


def _join_spaced(text: str, findings) -> list[Result]:
    """Findings as anonymizer results, neighbours of one type with only spaces between them
    joined into one (the anonymizer's merge_entities_with_spaces rule)."""
    out: list[Result] = []
    for f in findings:
        last = out[-1] if out else None
        gap = text[last.end : f.start] if last else ""
        if last and last.entity_type == f.entity_type and gap and not gap.strip(" "):
            last.end = f.end
            last.score = max(last.score, f.score)
        else:
            out.append(Result(f.entity_type, f.start, f.end, f.score))
    return out


def _shift(finding: Result, by: int) -> Result:
    return Result(finding.entity_type, finding.start + by, finding.end + by, finding.score)


def _apply(text: str, findings, operator: Operator) -> str:
    if not findings:
        return text
    # The light start: Presidio loads with the first line that has something to replace.
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig
    from presidio_anonymizer.entities import RecognizerResult

    global _engine
    if _engine is None:
        _engine = AnonymizerEngine()
    results = [RecognizerResult(f.entity_type, f.start, f.end, f.score) for f in findings]
    operators = {
        entity: OperatorConfig(
            "custom", {"lambda": lambda value, entity=entity: operator.replacement(entity, value)}
        )
        for entity in {f.entity_type for f in findings}
    }
    return _engine.anonymize(text, results, operators).text
