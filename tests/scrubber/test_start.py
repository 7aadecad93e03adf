"""What the scrubber loads before its first line: the gazetteer fast, spaCy only when needed."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import gender_guesser.detector

from privacy.scrubber import names
from privacy.scrubber.engine import Scrubber
from tests.scrubber.test_budget import AfterLooks

NO_NER_NEEDED = [
    "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown",
    "2025-06-30 12:04:33,120 INFO worker ready in 12 ms",
    "Invalid user marta from 81.2.69.142 port 22",
]


def test_the_gazetteer_holds_every_name_of_gender_guessers_detector():
    path = resources.files("gender_guesser") / "data" / "nam_dict.txt"
    assert names.given_names(path) == set(
        gender_guesser.detector.Detector(case_sensitive=False).names
    )


def test_a_lazy_model_loads_with_the_first_line_that_needs_ner():
    scrubber = Scrubber(lazy_model=True)
    found = scrubber.analyze_batch(NO_NER_NEEDED)
    assert scrubber._nlp is None
    assert [f.entity_type for f in found[2]] == ["PERSON", "IP_ADDRESS"]
    line = "Reviewed with Hiroshi Tanaka yesterday"
    (finding,) = scrubber.analyze(line)
    assert scrubber._nlp is not None
    assert line[finding.start : finding.end] == "Hiroshi Tanaka"


def test_a_lazy_model_is_not_loaded_for_a_batch_out_of_time():
    scrubber = Scrubber(lazy_model=True)
    # The deadline passes after the line's structural scan, before its NER window is read.
    results = scrubber.scrub_batch(["Reviewed with Hiroshi Tanaka yesterday"], budget=AfterLooks(1))
    assert results[0].unscrubbed
    assert scrubber._nlp is None


def test_a_lazy_model_that_is_not_installed_is_refused_at_once():
    try:
        Scrubber(model="no_such_spacy_model", lazy_model=True)
    except RuntimeError as exc:
        assert "is not installed" in str(exc)
    else:
        raise AssertionError("a missing model was accepted")


def test_the_command_imports_no_spacy_for_lines_that_need_no_ner(tmp_path):
    source = tmp_path / "in.log"
    source.write_text("\n".join(NO_NER_NEEDED) + "\n", encoding="utf-8")
    target = tmp_path / "out.log"
    program = (
        "import sys\n"
        "from privacy.scrubber.cli import main\n"
        f"status = main([{str(source)!r}, '-o', {str(target)!r}])\n"
        "print(status, 'spacy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["0", "False"]
    assert "81.2.69.142" not in target.read_text(encoding="utf-8")
    assert target.read_text(encoding="utf-8").count("\n") == len(NO_NER_NEEDED)

    source.write_text("Reviewed with Hiroshi Tanaka yesterday\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["0", "True"]
    assert target.read_text(encoding="utf-8") == "Reviewed with [PERSON] yesterday\n"


def test_loading_the_model_imports_no_presidio():
    program = (
        "import sys\n"
        "from privacy.scrubber.engine import Scrubber\n"
        "found = Scrubber().analyze('Reviewed with Hiroshi Tanaka yesterday')\n"
        "print(len(found), 'spacy' in sys.modules, 'presidio_analyzer' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["1", "True", "False"]
