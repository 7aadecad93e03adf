"""The time budget: work is bounded, and what cannot be scrubbed in time comes back masked.

No test here measures time. A budget of 0 is over before the first line; a Deadline that
passes after a number of looks at the clock shows where the engine looks.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from privacy.scrubber import engine
from privacy.scrubber import logfilter
from privacy.scrubber.config import DEFAULT_ENTITIES
from privacy.scrubber.config import UNSCRUBBED
from privacy.scrubber.config import ScrubConfig
from privacy.scrubber.engine import Scrubber
from privacy.scrubber.limits import Deadline
from tests.scrubber.test_relay import Receiver

ROOT = Path(__file__).resolve().parents[2]
LINE = "login ok for m.rossi@posteo.it from 203.0.113.77"
SCRUBBED = "login ok for [EMAIL_ADDRESS] from [IP_ADDRESS]"
PROSE = (
    "Yesterday Maria Lopez met John Smith in London and wrote to anna.meyer@example.org "
    "about the invoice; Peter Novak called +44 7911 123456 after the meeting. "
)


class AfterLooks(Deadline):
    """Passes after `looks` looks at it: where the engine checks, without a clock."""

    def __init__(self, looks: int) -> None:
        super().__init__(None)
        self.left = looks
        self.looks = 0

    def passed(self) -> bool:
        self.looks += 1
        self.left -= 1
        return self.left < 0

    def remaining(self) -> float | None:
        return None


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber()


# -- the engine --------------------------------------------------------------------------


def test_lines_not_finished_in_the_budget_come_back_masked_never_as_they_were(scrubber):
    results = scrubber.scrub_batch([LINE, LINE, "plain"], budget=0)

    assert [r.text for r in results] == [UNSCRUBBED] * 3
    assert all(r.unscrubbed and r.findings == [] for r in results)
    assert results[0].as_dict() == {"text": UNSCRUBBED, "findings": [], "unscrubbed": True}


def test_a_batch_past_its_deadline_masks_only_what_was_not_finished(scrubber):
    lines = [LINE] * 300  # two slices: the first finishes, the second starts too late
    deadline = AfterLooks(len(lines[: engine.SLICE_LINES]))

    results = scrubber.scrub_batch(lines, budget=deadline)

    assert [r.text for r in results[: engine.SLICE_LINES]] == [SCRUBBED] * engine.SLICE_LINES
    assert [r.text for r in results[engine.SLICE_LINES :]] == [UNSCRUBBED] * 44
    assert not any(r.unscrubbed for r in results[: engine.SLICE_LINES])


def test_without_a_budget_everything_is_scrubbed(scrubber):
    results = scrubber.scrub_batch([LINE, PROSE * 3])
    assert results[0].text == SCRUBBED and not results[1].unscrubbed
    assert "anna.meyer" not in results[1].text


class CountingModel:
    """The spaCy pipeline, counting its calls."""

    def __init__(self, nlp) -> None:
        self.nlp = nlp
        self.calls = 0

    def pipe(self, texts, batch_size):
        self.calls += 1
        return self.nlp.pipe(texts, batch_size=batch_size)


def test_ner_windows_of_slices_share_a_model_call_while_time_allows():
    scrubber = Scrubber()
    model = scrubber._nlp = CountingModel(scrubber._nlp)
    name_line = "Reviewed with Hiroshi Tanaka yesterday"
    lines = (["worker ready in 12 ms"] * (engine.SLICE_LINES - 1) + [name_line]) * 3

    results = scrubber.scrub_batch(lines, budget=120)

    assert [r.text for r in results if "Reviewed" in r.text] == [
        "Reviewed with [PERSON] yesterday"
    ] * 3
    assert model.calls == 1  # three slices, one call

    tight = scrubber.scrub_batch(lines, budget=Deadline(0.000001))
    assert all(r.unscrubbed for r in tight)


def test_a_long_line_is_scanned_in_pieces_each_under_the_deadline(scrubber):
    line = PROSE * 200  # about 35,000 characters on one line
    pieces = list(engine.pieces(line))
    assert len(pieces) >= 8
    assert all(end - start <= engine.PIECE_CHARS for start, end in pieces)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(line)
    assert all(b[0] < a[1] for a, b in zip(pieces, pieces[1:], strict=False))  # they overlap

    # The deadline passes inside the line: the line is masked, not finished past it.
    deadline = AfterLooks(3)
    (result,) = scrubber.scrub_batch([line], budget=deadline)
    assert result.text == UNSCRUBBED and result.unscrubbed
    assert deadline.looks <= 5


def test_long_lines_find_what_short_ones_do(scrubber):
    line = PROSE * 60
    findings = scrubber.analyze(line)
    emails = [f for f in findings if f.entity_type == "EMAIL_ADDRESS"]
    phones = [f for f in findings if f.entity_type == "PHONE_NUMBER"]
    assert len(emails) == 60 and len(phones) == 60
    assert all(line[f.start : f.end] == "anna.meyer@example.org" for f in emails)
    scrubbed = scrubber.scrub(line).text
    assert "anna.meyer" not in scrubbed and "7911" not in scrubbed


def test_ner_reads_bounded_windows_a_few_per_model_call():
    line = "Ana Lima " * 2000
    windows = engine.split_window(line, 0, len(line))
    assert all(end - start <= engine.NER_WINDOW_CHARS for start, end in windows)
    assert windows[0][0] == 0 and windows[-1][1] == len(line)
    groups = list(engine._groups([(0, s, e) for s, e in windows], 256))
    assert all(sum(e - s for _, s, e in g) <= engine.NER_GROUP_CHARS for g in groups)


def test_opt_in_ner_entities_on_a_huge_line_are_bounded_not_an_error():
    # Locations make NER read whole lines; spaCy refuses a text over 1,000,000 characters.
    scrubber = Scrubber(config=ScrubConfig(entities=DEFAULT_ENTITIES | {"LOCATION"}))
    line = "Paris and Berlin " * 70_000
    scanned = 1 + len(list(engine.pieces(line)))  # the line's patterns all run, then NER starts
    (result,) = scrubber.scrub_batch([line], budget=AfterLooks(scanned + 2))
    assert result.unscrubbed


def test_many_findings_on_one_line_are_replaced_as_few_ones_are(scrubber):
    line = ", ".join(f"203.0.113.{i % 250 + 1}" for i in range(5000))
    result = scrubber.scrub(line)
    assert len(result.findings) == 5000
    assert result.text == ", ".join(["[IP_ADDRESS]"] * 5000)
    # Neighbours of one type with only spaces between are one replacement, as in short lines.
    assert scrubber.scrub("203.0.113.1 203.0.113.2, x").text == "[IP_ADDRESS], x"
    spaced = scrubber.scrub(" ".join(["203.0.113.9"] * 5000) + " and m.rossi@posteo.it")
    assert spaced.text == "[IP_ADDRESS] and [EMAIL_ADDRESS]"


# -- the HTTP API ------------------------------------------------------------------------


@pytest.fixture
def no_budget(app, monkeypatch):
    """A budget over before any work starts: every line is over it."""
    monkeypatch.setitem(app.config, "SCRUB_BUDGET_SECONDS", 0)


def test_a_request_over_its_budget_comes_back_masked_and_says_which_lines(
    client, tenant, no_budget, caplog
):
    caplog.set_level(logging.WARNING, logger="privacy.scrubber")
    response = client.post(
        "/api/v1/scrub", json={"lines": [LINE, "second " + LINE]}, headers=tenant.headers
    )

    assert response.status_code == 200
    assert response.json == {
        "lines": [
            {"text": UNSCRUBBED, "findings": [], "unscrubbed": True},
            {"text": UNSCRUBBED, "findings": [], "unscrubbed": True},
        ],
        "unscrubbed_lines": [1, 2],
    }
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("privacy.scrubber")]
    assert any("2 of 2 lines masked" in m for m in logged), logged
    assert str(tenant.account.public_id) in " ".join(logged)
    assert "posteo" not in caplog.text and "203.0.113" not in caplog.text


def test_a_text_over_its_budget_comes_back_masked(client, tenant, no_budget):
    response = client.post(
        "/api/v1/scrub", json={"text": LINE, "findings": False}, headers=tenant.headers
    )
    assert response.json == {"text": UNSCRUBBED, "unscrubbed": True, "unscrubbed_lines": [1]}


def test_within_the_budget_nothing_is_marked(client, tenant):
    response = client.post("/api/v1/scrub", json={"lines": [LINE]}, headers=tenant.headers)
    assert "unscrubbed_lines" not in response.json
    assert "unscrubbed" not in response.json["lines"][0]


def test_streamed_lines_over_the_budget_come_back_masked(client, tenant, no_budget, caplog):
    caplog.set_level(logging.WARNING, logger="privacy.scrubber")
    response = client.post(
        "/api/v1/scrub/stream?findings=false",
        data=json.dumps(LINE) + "\n" + json.dumps("x") + "\n",
        headers=tenant.headers,
        content_type="application/x-ndjson",
    )
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert lines == [{"text": UNSCRUBBED, "unscrubbed": True}] * 2
    assert "2 of 2 streamed lines masked" in caplog.text and "posteo" not in caplog.text


def test_relayed_lines_over_the_budget_are_sent_masked(app, client, tenant, no_budget, monkeypatch):
    receiver = Receiver("tcp")
    monkeypatch.setitem(app.config, "SCRUB_RELAY_URL", receiver.url)
    try:
        response = client.post(
            "/api/v1/scrub/relay",
            data=f"{LINE}\n",
            headers=tenant.headers,
            content_type="text/plain",
        )
        assert response.json == {"lines": 1, "unscrubbed_lines": [1]}
        assert receiver.wait(1) == [UNSCRUBBED]
    finally:
        receiver.close()


# -- the command line and Python logging ---------------------------------------------------


def test_cli_budget_writes_unscrubbed_lines_and_counts_them_on_stderr():
    cli = [sys.executable, "-m", "privacy.scrubber.cli", "--no-ner", "--budget", "0"]
    result = subprocess.run(
        cli, input=f"{LINE}\n{LINE}\r\n".encode(), capture_output=True, cwd=ROOT, timeout=180
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"<UNSCRUBBED>\n<UNSCRUBBED>\r\n"
    assert b"2 lines could not be scrubbed within --budget 0 s" in result.stderr
    assert b"posteo" not in result.stderr

    findings = subprocess.run(
        [*cli, "--findings"], input=f"{LINE}\n".encode(), capture_output=True, cwd=ROOT, timeout=180
    )
    assert json.loads(findings.stdout) == {"text": UNSCRUBBED, "findings": [], "unscrubbed": True}


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_logging_handler_budget_masks_and_reports_the_count(scrubber):
    target = Keep()
    handler = logfilter.ScrubbingHandler(target, scrubber=scrubber, budget=0)
    logger = logging.getLogger("tests.budget.handler")
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        logger.warning("login ok for %s", "m.rossi@posteo.it")
        handler.flush()
    finally:
        handler.close()
    messages = [r.getMessage() for r in target.records]
    assert messages[0] == UNSCRUBBED
    assert any("1 log records had text masked" in m for m in messages[1:]), messages
    assert handler.stats()["masked"] == 1
    assert not any("posteo" in m for m in messages)


def test_logging_filter_budget_masks_on_the_callers_thread(scrubber):
    target = Keep()
    target.addFilter(logfilter.ScrubbingFilter(scrubber=scrubber, budget=0))
    logger = logging.getLogger("tests.budget.filter")
    logger.handlers[:] = [target]
    logger.propagate = False
    logger.warning("login ok for %s", "m.rossi@posteo.it")
    assert target.records[0].getMessage() == UNSCRUBBED
