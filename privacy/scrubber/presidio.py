"""The scrubber's structural recognizers as Presidio EntityRecognizers, for a stock
AnalyzerEngine (`analyzer.registry.add_recognizer(LogPatternRecognizer())`). The scrubber
itself runs them without Presidio (privacy.scrubber.results)."""

from __future__ import annotations

from presidio_analyzer import EntityRecognizer
from presidio_analyzer import RecognizerResult

from privacy.scrubber import names
from privacy.scrubber import recognizers


class _Wrapped(EntityRecognizer):
    scanner_class: type

    def __init__(self) -> None:
        self.scanner = self.scanner_class()
        super().__init__(supported_entities=list(self.scanner.ENTITIES), name=type(self).__name__)

    def load(self) -> None:  # the scanner loaded what it needs when it was made
        return None

    def analyze(self, text, entities=None, nlp_artifacts=None) -> list[RecognizerResult]:
        wanted = set(entities or self.supported_entities)
        return [
            RecognizerResult(r.entity_type, r.start, r.end, r.score)
            for r in self.scanner.scan(text)
            if r.entity_type in wanted
        ]


class LogPatternRecognizer(_Wrapped):
    """E-mail, IP (v4/v6), credit card, IBAN and phone (recognizers.LogPatterns)."""

    scanner_class = recognizers.LogPatterns


class NameStructureRecognizer(_Wrapped):
    """PERSON by where a value stands (names.NameStructure)."""

    scanner_class = names.NameStructure
