"""A recognizer's raw finding, without Presidio.

`Result` has the fields and constructor of Presidio's RecognizerResult (entity type, start,
end exclusive, score), which is all the engine reads. Importing Presidio imports spaCy, about
1.7 s and 80 MB: the structural scan (e-mails, phones, IPs, cards, IBANs, names by where they
stand) and the replacement (privacy.scrubber.anonymizer, Presidio's rules applied directly)
run on these, so neither the log safety net nor the command line imports Presidio unless an
account opts in to its US id recognizers.
"""

from __future__ import annotations


class Result:
    __slots__ = ("entity_type", "start", "end", "score")

    def __init__(self, entity_type: str, start: int, end: int, score: float) -> None:
        self.entity_type = entity_type
        self.start = start
        self.end = end
        self.score = score

    def __repr__(self) -> str:
        return f"Result({self.entity_type!r}, {self.start}, {self.end}, {self.score})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Result):
            return NotImplemented
        return (self.entity_type, self.start, self.end, self.score) == (
            other.entity_type,
            other.start,
            other.end,
            other.score,
        )

    __hash__ = None  # mutable, like RecognizerResult
