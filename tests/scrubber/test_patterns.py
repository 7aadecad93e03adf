"""Custom patterns and deny lists: RE2 (linear time), refusal of what RE2 cannot run, and
stored patterns from before RE2 that must never let a line through."""

from __future__ import annotations

import pytest

from privacy.extensions import db
from privacy.scrubber import patterns
from privacy.scrubber import services
from privacy.scrubber.config import UNSCRUBBED
from privacy.scrubber.config import ScrubConfig
from privacy.scrubber.engine import Scrubber
from privacy.scrubber.models import ScrubSettings

SETTINGS = "/api/v1/scrub/settings"
EMPTY = {"entities": [], "patterns": {}, "deny": {}, "allow": []}
# Exponential for a backtracking engine on a run of a's that does not end the line.
CATASTROPHIC = r"(a|aa)+$"


def custom(patterns_=None, deny=None) -> Scrubber:
    return Scrubber(model=None, config=ScrubConfig(patterns=patterns_ or {}, deny=deny or {}))


def test_a_catastrophic_pattern_is_accepted_and_runs_in_re2(client, tenant):
    saved = client.put(
        SETTINGS, json={**EMPTY, "patterns": {"TICKET": [CATASTROPHIC]}}, headers=tenant.headers
    )
    assert saved.status_code == 200, saved.json

    scrubber = services.scrubber_for(tenant.account)
    assert [entity for entity, _ in scrubber.custom.programs] == ["TICKET"]
    assert scrubber.custom.legacy == []
    # 100,000 a's and a "!": a backtracking engine would not finish this in our lifetime.
    lines = ["a" * 100_000 + "!", "aaaa"]
    response = client.post("/api/v1/scrub", json={"lines": lines}, headers=tenant.headers)
    assert response.status_code == 200
    texts = [line["text"] for line in response.json["lines"]]
    assert texts == [lines[0], "[TICKET]"]
    assert "unscrubbed_lines" not in response.json


@pytest.mark.parametrize(
    "pattern",
    [
        r"(\w+)\s\1",  # a backreference
        r"(?<!\d)EMP\d{4}",  # a lookbehind
        r"EMP(?=\d)",  # a lookahead
        r"(?>a+)b",  # an atomic group
        r"a{1001}",  # a repetition RE2 refuses
        r"(\w{100}){100}",  # too large a program
    ],
)
def test_patterns_re2_cannot_run_are_refused_with_a_clear_422(client, tenant, pattern):
    before = client.get(SETTINGS, headers=tenant.headers).json
    for method in ("PUT", "PATCH"):
        body = {"patterns": {"EMPLOYEE_ID": [pattern]}}
        if method == "PUT":
            body = {**EMPTY, **body}
        response = client.open(SETTINGS, method=method, json=body, headers=tenant.headers)
        assert response.status_code == 422, (method, response.json)
        (message,) = response.json["errors"]["json"]["patterns"]
        assert message.startswith("EMPLOYEE_ID #1: ") and "RE2 syntax" in message
    assert client.get(SETTINGS, headers=tenant.headers).json == before


def test_too_long_a_pattern_is_refused(client, tenant):
    body = {**EMPTY, "patterns": {"EMPLOYEE_ID": ["x" * 501]}}
    response = client.put(SETTINGS, json=body, headers=tenant.headers)
    assert response.status_code == 422
    assert "patterns" in response.json["errors"]["json"]


def test_patterns_keep_presidios_flags_case_insensitive_and_multiline():
    scrubber = custom({"EMPLOYEE_ID": [r"\bEMP-\d{6}\b", r"^ticket \d+$"]})
    assert scrubber.scrub("by emp-123456 today").text == "by [EMPLOYEE_ID] today"
    assert scrubber.scrub("x\nTicket 42\ny").text == "x\n[EMPLOYEE_ID]\ny"


def test_deny_lists_match_whole_words_case_insensitively_side_by_side():
    scrubber = custom(deny={"PERSON": ["Bobby", "Ann", "Ann Lee", "Zoë"]})
    assert scrubber.scrub("bobby; Bobby,BOBBY Bobbyx xBobby").text == (
        "[PERSON]; [PERSON],[PERSON] Bobbyx xBobby"
    )
    # The longer value when it is a whole word, else a shorter one at the same place.
    assert scrubber.scrub("to Ann Lee and Ann Leeds").text == "to [PERSON] and [PERSON] Leeds"
    assert scrubber.scrub("Zoë's ticket").text == "[PERSON]'s ticket"


def test_a_deny_list_of_a_thousand_long_values_is_linear():
    values = ["z" * 199 + str(i % 10) for i in range(1000)]
    scrubber = custom(deny={"CODE": values})
    line = "z" * 50_000  # every position starts a near-match of every value
    assert scrubber.scrub(line).text == line
    assert scrubber.scrub(f"x {values[3]} y").text == "x [CODE] y"


# -- stored patterns from before RE2 ---------------------------------------------------------


def store(tenant, patterns_: dict[str, list[str]]) -> None:
    """Settings as an older release saved them, without today's checks."""
    db.session.add(
        ScrubSettings(
            account_id=tenant.account.id,
            entities=sorted(patterns_),
            patterns=patterns_,
            deny={},
            allow=[],
        )
    )
    db.session.commit()


def test_a_stored_lookaround_pattern_still_scrubs(client, tenant, caplog):
    store(tenant, {"EMPLOYEE_ID": [r"(?<![A-Z])EMP\d{4}"]})
    response = client.post(
        "/api/v1/scrub", json={"lines": ["by EMP1234", "XEMP1234"]}, headers=tenant.headers
    )
    assert [line["text"] for line in response.json["lines"]] == ["by [EMPLOYEE_ID]", "XEMP1234"]
    assert "1 custom patterns RE2 cannot run" in caplog.text
    assert "EMP" not in caplog.text


def test_a_stored_catastrophic_pattern_masks_the_line_never_passes_it(app, client, tenant):
    # A lookahead keeps it out of RE2: the backtracking engine runs it, under the budget.
    store(tenant, {"TICKET": [r"(a|aa)+(?=!)"]})
    app.config["SCRUB_BUDGET_SECONDS"], saved = 0.2, app.config["SCRUB_BUDGET_SECONDS"]
    try:
        response = client.post(
            "/api/v1/scrub",
            json={"lines": ["mail m.rossi@posteo.it " + "a" * 60 + "?", "fine"]},
            headers=tenant.headers,
        )
    finally:
        app.config["SCRUB_BUDGET_SECONDS"] = saved
    assert response.status_code == 200
    assert response.json["lines"][0] == {"text": UNSCRUBBED, "findings": [], "unscrubbed": True}
    assert response.json["unscrubbed_lines"][0] == 1


def test_a_stored_pattern_times_out_without_a_budget_too():
    scrubber = custom({"TICKET": [r"(a|aa)+(?=!)"]})
    assert scrubber.custom.legacy and not scrubber.custom.programs
    patterns_before, patterns.LEGACY_TIMEOUT = patterns.LEGACY_TIMEOUT, 0.05
    try:
        (result,) = scrubber.scrub_batch(["a" * 60 + "?"])
    finally:
        patterns.LEGACY_TIMEOUT = patterns_before
    assert result.unscrubbed and result.text == UNSCRUBBED


def test_a_patch_that_leaves_stored_patterns_alone_does_not_check_them(client, tenant):
    store(tenant, {"EMPLOYEE_ID": [r"(?<![A-Z])EMP\d{4}"]})
    response = client.patch(SETTINGS, json={"allow": ["ops@acme.example"]}, headers=tenant.headers)
    assert response.status_code == 200, response.json
    assert response.json["patterns"] == {"EMPLOYEE_ID": [r"(?<![A-Z])EMP\d{4}"]}


def test_a_stored_pattern_no_engine_reads_masks_lines_instead_of_failing(client, tenant):
    store(tenant, {"TICKET": [r"(?P<x>a)(?P=y)"]})  # a group that does not exist
    response = client.post("/api/v1/scrub", json={"lines": ["a b", ""]}, headers=tenant.headers)
    assert response.status_code == 200
    assert response.json["unscrubbed_lines"] == [1, 2]
