"""The scrubber's structural recognizers still plug into a stock Presidio AnalyzerEngine."""

from __future__ import annotations

import subprocess
import sys

from presidio_analyzer import AnalyzerEngine
from presidio_analyzer import RecognizerRegistry
from presidio_analyzer.nlp_engine import NlpEngineProvider

from privacy.scrubber.config import DEFAULT_MODEL
from privacy.scrubber.presidio import LogPatternRecognizer
from privacy.scrubber.presidio import NameStructureRecognizer


def test_a_stock_analyzer_finds_what_the_scrubbers_recognizers_find():
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": DEFAULT_MODEL}],
        }
    )
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(LogPatternRecognizer())
    registry.add_recognizer(NameStructureRecognizer())
    analyzer = AnalyzerEngine(
        registry=registry, nlp_engine=provider.create_engine(), supported_languages=["en"]
    )
    line = "login failed user=Anna Schmidt from 203.0.113.9 mail ana@example.org"
    found = analyzer.analyze(
        text=line, language="en", entities=["PERSON", "IP_ADDRESS", "EMAIL_ADDRESS"]
    )
    assert sorted((r.entity_type, line[r.start : r.end]) for r in found) == [
        ("EMAIL_ADDRESS", "ana@example.org"),
        ("IP_ADDRESS", "203.0.113.9"),
        ("PERSON", "Anna Schmidt"),
    ]


def test_scanning_and_replacing_run_without_presidio():
    code = (
        "import sys\n"
        "from privacy.scrubber.engine import Scrubber\n"
        "from privacy.scrubber.operators import REDACT\n"
        "heavy = lambda: sorted(m for m in ('presidio_analyzer', 'presidio_anonymizer', "
        "'spacy') if m in sys.modules)\n"
        "s = Scrubber(model=None)\n"
        "print(s.scrub_batch(['GET /healthz 200 1.2ms'], REDACT)[0].text, heavy())\n"
        "print(s.scrub_batch(['mail to ana@example.org'], REDACT)[0].text, heavy())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.splitlines() == [
        "GET /healthz 200 1.2ms []",
        "mail to [EMAIL_ADDRESS] []",
    ]
