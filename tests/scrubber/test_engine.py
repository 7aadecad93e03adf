"""The scrubbing engine on our own labelled cases: each entity, its look-alikes, log formats."""

from __future__ import annotations

import pytest

from privacy.scrubber.config import ScrubConfig
from privacy.scrubber.engine import Scrubber


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber()


@pytest.fixture(scope="module")
def patterns_only() -> Scrubber:
    return Scrubber(model=None)


def found(scrubber: Scrubber, line: str) -> list[tuple[str, str]]:
    return [(f.entity_type, line[f.start : f.end]) for f in scrubber.analyze(line)]


POSITIVE = [
    # e-mail, plain, tagged, in a query string, URL-encoded
    ("login ok for m.rossi@posteo.it", "EMAIL_ADDRESS", "m.rossi@posteo.it"),
    ("GET /verify?email=jan.novak%40seznam.cz&t=1", "EMAIL_ADDRESS", "jan.novak%40seznam.cz"),
    ('{"to":"kim+billing@proton.me"}', "EMAIL_ADDRESS", "kim+billing@proton.me"),
    # IPs
    ("client=203.0.113.77 status=200", "IP_ADDRESS", "203.0.113.77"),
    ("from 2001:db8:85a3::8a2e:370:7334 port 22", "IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334"),
    ("peer ::ffff:192.0.2.128 closed", "IP_ADDRESS", "::ffff:192.0.2.128"),
    # cards: Visa, Mastercard 2-series, Amex grouped 4-6-5
    ("charge failed card=4111111111111111", "CREDIT_CARD", "4111111111111111"),
    ("card 2223 0031 2200 3222 declined", "CREDIT_CARD", "2223 0031 2200 3222"),
    ("amex 3782-822463-10005 ok", "CREDIT_CARD", "3782-822463-10005"),
    # IBAN, compact and grouped, followed by a word
    ("refund to DE89370400440532013000 queued", "IBAN_CODE", "DE89370400440532013000"),
    ("IBAN GB82 WEST 1234 5698 7654 32 rejected", "IBAN_CODE", "GB82 WEST 1234 5698 7654 32"),
    # phones: international, national with context, URL-encoded
    ("sms to +44 7911 123456 failed", "PHONE_NUMBER", "+44 7911 123456"),
    ("call back on 030 901820 tomorrow", "PHONE_NUMBER", "030 901820"),
    ("GET /otp?phone=%2B33612345678", "PHONE_NUMBER", "%2B33612345678"),
    ("Could not deliver SMS to (212) 555-0142: timeout", "PHONE_NUMBER", "(212) 555-0142"),
    # names by structure
    ('{"customer":{"name":"Agnieszka Kowalczyk"}}', "PERSON", "Agnieszka Kowalczyk"),
    ("checkout user=tomasz.wolski ip=-", "PERSON", "tomasz.wolski"),
    ('holder="Nguyen Van An" amount=12', "PERSON", "Nguyen Van An"),
    ('198.51.100.4 - lmeyer [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200', "PERSON", "lmeyer"),
    (
        "Failed password for invalid user olga_petrova from 198.51.100.9 port 22",
        "PERSON",
        "olga_petrova",
    ),
    ("Payment declined for Henrietta Lacks: card expired", "PERSON", "Henrietta Lacks"),
    ("Ticket 7 reassigned from Jonas Berg to Aiko Tanaka", "PERSON", "Aiko Tanaka"),
    (
        "INSERT INTO payees (iban, holder) VALUES ('x', 'Margarethe Vogel')",
        "PERSON",
        "Margarethe Vogel",
    ),
    ("GET /search?q=Donna+Martinez&page=2", "PERSON", "Donna+Martinez"),
    ('{"name":"Ivica Hr\\u0161ak"}', "PERSON", "Ivica Hr\\u0161ak"),
    ("holder=Дмитрий Иванов declined", "PERSON", "Дмитрий Иванов"),
    ("customer 田中修平 opened a ticket", "PERSON", "田中修平"),
]


@pytest.mark.parametrize("line,entity,value", POSITIVE)
def test_finds_personal_data(scrubber, line, entity, value):
    assert (entity, value) in found(scrubber, line)


NEGATIVE = [
    "2025-06-29 12:58:39,681 INFO [uvicorn.access] Loaded plugin UserProfileSerializer 4.7.0-rc.3",
    "request 3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c finished in 29.763s",
    "sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "card ************1111 charged 42.00 EUR",
    "order 4111 shipped; 12 items; took 1534 ms",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0.0.0 Safari/537.36",
    "connection authorized: user=app database=shop application_name=inventory-sync",
    "version 10.0.17914.1748 deployed to eu-central-1",
    'Traceback (most recent call last): File "/srv/app/billing/service.py", line 88',
    "[2025-06-29 13:11:35,435: INFO/MainProcess] mingle: searching for neighbors",
    '{"msg":"SMS delivery failed","provider":"twilio","error_code":7715}',
    "GET /api/v1/orders?page=2&limit=50 HTTP/1.1 200 1532",
    "task billing.send_invoice[9d1c] succeeded in 0.2s",
    # Ids a log must keep whole to follow a task through its retries: UUIDs whose first
    # group is all digits read like a phone number after "callback", and long hex ids.
    "Task dsr.deliver_callback[12345678-88a8-4c2d-9f3e-0123456789ab] succeeded in 0.02s",
    "callback 12 for request 20261203-1234-4567-8901-234567890123 failed (HTTP 500)",
    "Task dsr.process[00000000-0000-4000-8000-000000000000] received",
    "request_id=4916efeec784899845abc67db75fd21a trace=0af7651916cd43dd8448eb211c80319c",
]


@pytest.mark.parametrize("line", NEGATIVE)
def test_leaves_look_alikes_alone(scrubber, line):
    assert found(scrubber, line) == []


def test_personal_data_next_to_or_around_an_id_is_still_found(scrubber):
    line = "callback 4916efeec784899845abc67db75fd21a@example.org to +44 20 7946 0958"
    assert [f.entity_type for f in scrubber.analyze(line)] == ["EMAIL_ADDRESS", "PHONE_NUMBER"]


def test_offsets_are_into_the_raw_line_for_encoded_values(scrubber):
    line = "GET /s?q=Svatoslav+%C5%A0%C5%A5astn%C3%BD&x=1"
    (finding,) = scrubber.analyze(line)
    assert line[finding.start : finding.end] == "Svatoslav+%C5%A0%C5%A5astn%C3%BD"


def test_batch_equals_single_calls(scrubber):
    lines = [line for line, _, _ in POSITIVE] + NEGATIVE
    assert scrubber.analyze_batch(lines) == [scrubber.analyze(line) for line in lines]


def test_findings_do_not_overlap_and_are_sorted(scrubber):
    line = 'customer="Ana Lima" <ana.lima@example.org> card=4111111111111111 ip=192.0.2.1'
    findings = scrubber.analyze(line)
    assert findings == sorted(findings, key=lambda f: f.start)
    assert all(a.end <= b.start for a, b in zip(findings, findings[1:], strict=False))


def test_patterns_only_mode_still_finds_structure(patterns_only):
    assert found(patterns_only, "user=tomasz.wolski ip=203.0.113.77") == [
        ("PERSON", "tomasz.wolski"),
        ("IP_ADDRESS", "203.0.113.77"),
    ]


def test_custom_patterns_deny_and_allow_lists():
    config = ScrubConfig(
        entities=frozenset({"EMAIL_ADDRESS", "EMPLOYEE_ID"}),
        patterns={"EMPLOYEE_ID": [r"\bEMP-\d{6}\b"]},
        allow=frozenset({"noreply@example.com"}),
    )
    scrubber = Scrubber(model=None, config=config)
    line = "EMP-123456 mailed noreply@example.com and eva@example.org"
    assert found(scrubber, line) == [
        ("EMPLOYEE_ID", "EMP-123456"),
        ("EMAIL_ADDRESS", "eva@example.org"),
    ]
    deny = Scrubber(
        model=None, config=ScrubConfig(entities=frozenset({"PERSON"}), deny={"PERSON": ["Bobby"]})
    )
    assert ("PERSON", "Bobby") in found(deny, "Bobby restarted the job")


def test_opt_in_entities_are_off_by_default(scrubber):
    line = "job 3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c at https://example.org/x on 2025-06-29"
    assert found(scrubber, line) == []
    opted = Scrubber(model=None, config=ScrubConfig(entities=frozenset({"UUID", "URL"})))
    assert [e for e, _ in found(opted, line)] == ["UUID", "URL"]


def test_unknown_entities_and_missing_models_are_clear_errors():
    with pytest.raises(ValueError, match="unknown entities"):
        ScrubConfig(entities=frozenset({"SHOE_SIZE"}))
    with pytest.raises(RuntimeError, match="not installed"):
        Scrubber(model="no_such_model_package")


def test_engine_imports_neither_flask_nor_the_database():
    import subprocess
    import sys

    code = (
        "import sys, privacy.scrubber.engine; "
        "print(sorted(m for m in ('flask', 'sqlalchemy', 'werkzeug') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
