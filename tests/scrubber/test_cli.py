"""`privacy-scrub` run as a real process: pipe filter, files, findings JSON, jobs, keys."""

from __future__ import annotations

import base64
import json
import queue
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "privacy.scrubber.cli"]


def run(*args: str, stdin: bytes = b"", timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, cwd=ROOT, timeout=timeout, check=False
    )


def generated_lines(count: int) -> list[str]:
    """Log lines with and without personal data, in several formats."""
    rnd = random.Random(7)
    firsts = ["Maria", "Jan", "Aiko", "Oluwaseun", "Léa", "Søren"]
    lasts = ["Gonzalez", "Novak", "Tanaka", "Adeyemi", "Dubois", "Kierkegaard"]
    lines = []
    for i in range(count):
        first, last = rnd.choice(firsts), rnd.choice(lasts)
        ip = f"203.0.113.{rnd.randint(1, 254)}"
        email = f"{first.lower()}.{last.lower()}@example.org"
        kind = i % 6
        if kind == 0:
            lines.append(f"2025-01-02T10:00:{i % 60:02d}Z INFO login ok user={email} ip={ip}")
        elif kind == 1:
            lines.append(json.dumps({"level": "info", "msg": "signup", "name": f"{first} {last}"}))
        elif kind == 2:
            lines.append(f'{ip} - - [02/Jan/2025:10:00:00 +0000] "GET /health HTTP/1.1" 200 2')
        elif kind == 3:
            lines.append(f"charge failed card=4111111111111111 order={i}")
        elif kind == 4:
            lines.append(f"worker[{i}] task done in {rnd.random():.3f}s")
        else:
            lines.append(f"refund to DE89370400440532013000 for {first} {last} queued")
    return lines


def test_stdin_is_scrubbed_to_stdout_line_by_line():
    result = run(
        "--no-ner",
        stdin=b"login ok for m.rossi@posteo.it\nclient=203.0.113.77 status=200\nnothing here\n",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        b"login ok for [EMAIL_ADDRESS]\nclient=[IP_ADDRESS] status=200\nnothing here\n"
    )
    assert result.stderr == b""


def test_console_script_runs_the_same_cli():
    script = shutil.which("privacy-scrub", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.fail("console script not installed: `make test` runs pip install -e '.[test]'")

    result = subprocess.run(
        [script, "--no-ner"], input=b"card 4111111111111111\n", capture_output=True, timeout=180
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == b"card [CREDIT_CARD]\n"


def test_line_endings_are_kept_and_a_last_line_stays_without_newline():
    result = run("--no-ner", stdin=b"a jo@example.com\r\n\nb\nlast 203.0.113.9")

    assert result.stdout == b"a [EMAIL_ADDRESS]\r\n\nb\nlast [IP_ADDRESS]"


def test_findings_gives_exactly_one_json_object_per_input_line_in_order():
    lines = [
        "login ok for m.rossi@posteo.it from 203.0.113.77",
        "",
        "nothing personal \u2028 but a Unicode line separator, ünïcödé",
        "",
        "card 4111111111111111",
        "last line without newline jo@example.com",
    ]
    stdin = ("\n".join(lines[:3]) + "\r\n" + "\n".join(lines[3:])).encode()

    result = run("--no-ner", "--findings", stdin=stdin)

    assert result.returncode == 0, result.stderr
    out = result.stdout.decode().splitlines()
    assert len(out) == len(lines)
    objects = [json.loads(line) for line in out]
    assert [set(o) for o in objects] == [{"text", "findings"}] * len(lines)
    assert objects[1] == {"text": "", "findings": []}
    assert objects[2] == {"text": lines[2], "findings": []}
    found = [
        [(lines[i][f["start"] : f["end"]], f["entity_type"]) for f in o["findings"]]
        for i, o in enumerate(objects)
    ]
    assert found[0] == [("m.rossi@posteo.it", "EMAIL_ADDRESS"), ("203.0.113.77", "IP_ADDRESS")]
    assert found[4] == [("4111111111111111", "CREDIT_CARD")]
    assert found[5] == [("jo@example.com", "EMAIL_ADDRESS")]
    assert objects[5]["text"] == "last line without newline [EMAIL_ADDRESS]"
    assert all(isinstance(f["score"], float) for o in objects for f in o["findings"])


def test_jobs_2_gives_the_same_output_in_the_same_order_as_jobs_1():
    stdin = ("\n".join(generated_lines(600)) + "\n").encode()

    one = run("--no-ner", "--findings", "--jobs", "1", stdin=stdin)
    two = run("--no-ner", "--findings", "--jobs", "2", stdin=stdin)

    assert one.returncode == 0 and two.returncode == 0, (one.stderr, two.stderr)
    assert two.stdout == one.stdout
    assert len(one.stdout.splitlines()) == 600
    assert b"EMAIL_ADDRESS" in one.stdout and b"PERSON" in one.stdout


def test_files_go_to_output_in_order_with_a_progress_bar_on_stderr(tmp_path):
    first = tmp_path / "a.log"
    second = tmp_path / "b.log"
    first.write_bytes(b"one jo@example.com\ntwo\n")
    second.write_bytes(b"three 203.0.113.5\n")
    out = tmp_path / "clean.log"

    result = run("--no-ner", "--progress", str(first), str(second), "-o", str(out))

    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert out.read_bytes() == b"one [EMAIL_ADDRESS]\ntwo\nthree [IP_ADDRESS]\n"
    assert b"privacy-scrub" in result.stderr and b"100%" in result.stderr
    assert b"41.0/41.0" in result.stderr  # bytes of both files
    assert b"jo@example.com" not in result.stderr


def test_no_progress_bar_unless_asked_when_stderr_is_not_a_terminal(tmp_path):
    log = tmp_path / "a.log"
    log.write_bytes(b"one jo@example.com\n")

    result = run("--no-ner", str(log))

    assert result.stdout == b"one [EMAIL_ADDRESS]\n"
    assert result.stderr == b""


def test_bytes_that_are_not_utf8_pass_through_unchanged():
    garbage = b"\xff\xfe\x00binary \xc3( \xed\xa0\x80 end\n"
    stdin = garbage + b"bad \xff mail jo@example.com \xc3\nlast \xe2\x82"

    result = run("--no-ner", stdin=stdin)
    findings = run("--no-ner", "--findings", stdin=stdin)

    assert result.returncode == 0, result.stderr
    assert result.stdout == garbage + b"bad \xff mail [EMAIL_ADDRESS] \xc3\nlast \xe2\x82"
    objects = [json.loads(line) for line in findings.stdout.splitlines()]
    assert len(objects) == 3
    assert objects[1]["text"] == "bad \udcff mail [EMAIL_ADDRESS] \udcc3"
    assert objects[1]["findings"][0]["start"] == len("bad \udcff mail ")


def test_undecodable_bytes_do_not_break_ner_or_keyed_modes(tmp_path):
    key = tmp_path / "key"
    key.write_bytes(bytes(range(32)))
    stdin = b"Meeting with Maria Gonzalez about \xff\xfe invoices j\xffo@example.com\n"

    result = run("--mode", "pseudonym", "--key-file", str(key), stdin=stdin)

    assert result.returncode == 0, result.stderr
    assert b"Maria" not in result.stdout and b"\xff\xfe invoices" in result.stdout


def test_pseudonym_mode_with_a_key_file_is_stable_across_runs(tmp_path):
    raw_key = bytes(range(40, 72))
    raw = tmp_path / "raw.key"
    raw.write_bytes(raw_key)
    b64 = tmp_path / "b64.key"
    b64.write_text(base64.b64encode(raw_key).decode() + "\n")
    other = tmp_path / "other.key"
    other.write_bytes(bytes(range(100, 132)))
    stdin = b"login ok for m.rossi@posteo.it\nagain m.rossi@posteo.it\n"

    first = run("--no-ner", "--mode", "pseudonym", "--key-file", str(raw), stdin=stdin)
    second = run("--no-ner", "--mode", "pseudonym", "--key-file", str(raw), stdin=stdin)
    encoded = run("--no-ner", "--mode", "pseudonym", "--key-file", str(b64), stdin=stdin)
    different = run("--no-ner", "--mode", "pseudonym", "--key-file", str(other), stdin=stdin)

    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout == encoded.stdout
    one, two = first.stdout.decode().splitlines()
    assert one.startswith("login ok for <EMAIL_ADDRESS:") and "rossi" not in one
    assert one.split()[-1] == two.split()[-1]
    assert different.stdout != first.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "pseudonym"], b"--mode pseudonym needs --key-file"),
        (["--mode", "token", "--key-file", "SHORT"], b"64-byte"),
        (["--mode", "token", "--key-file", "/no/such/key"], b"cannot read --key-file"),
        (["--key-file", "SHORT"], b"only used with --mode pseudonym or token"),
        (["--entities", "UUID,NOPE"], b"unknown entities: NOPE"),
        (["--model", "no_such_spacy_model"], b"is not installed"),
        (["--jobs", "x"], b"--jobs"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(tmp_path, args, message):
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 32)
    args = [str(short) if a == "SHORT" else a for a in args]

    result = run(*args, stdin=b"jo@example.com\n")

    assert result.returncode == 2
    assert message in result.stderr
    assert b"Traceback" not in result.stderr and result.stdout == b""


def test_unreadable_input_exits_1_with_one_line_and_no_traceback(tmp_path):
    result = run("--no-ner", str(tmp_path / "missing.log"))

    assert result.returncode == 1
    assert result.stderr.decode().strip().count("\n") == 0
    assert b"No such file" in result.stderr and b"Traceback" not in result.stderr


def test_ner_and_opt_in_entities():
    line = "Quarterly review: Maria Gonzalez asked for ticket 9f1c2a4e-1b2c-4d5e-8f90-123456789abc"

    result = run("--entities", "uuid", "--findings", stdin=line.encode() + b"\n")

    assert result.returncode == 0, result.stderr
    (obj,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert obj["text"] == "Quarterly review: [PERSON] asked for ticket [UUID]"


def read_line_within(stream, timeout: float) -> bytes | None:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_pipe_writes_each_line_before_stdin_is_closed(jobs):
    proc = subprocess.Popen(
        [*CLI, "--no-ner", "--jobs", jobs],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        proc.stdin.write(b"first jo@example.com\n")
        proc.stdin.flush()
        # Generous: the first line waits for the process (and its workers) to start.
        assert read_line_within(proc.stdout, 120) == b"first [EMAIL_ADDRESS]\n"

        started = time.monotonic()
        proc.stdin.write(b"second 203.0.113.7\n")
        proc.stdin.flush()
        assert read_line_within(proc.stdout, 5) == b"second [IP_ADDRESS]\n"
        assert time.monotonic() - started < 5
        assert proc.poll() is None  # still waiting for more input
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0


def test_cli_imports_neither_flask_nor_the_database():
    code = (
        "import sys, privacy.scrubber.cli as cli; "
        "cli.LineScrubber(cli.Settings(None, frozenset({'IP_ADDRESS'}), 'mask', None, True)); "
        "print(sorted(m for m in ('flask', 'sqlalchemy', 'werkzeug') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "[]"
