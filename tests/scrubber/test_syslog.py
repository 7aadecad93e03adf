"""The rsyslog and syslog-ng configurations in docs/ scrub messages with the real daemons."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from privacy.paths import ROOT
from tests import helpers
from tests.helpers import BIN
from tests.helpers import free_port

MESSAGES = [
    "<14>Nov 29 16:55:00 web app: login ok for ana.lima@example.org from 203.0.113.9",
    "<14>Nov 29 16:55:01 web app: checkout user=tomasz.wolski card=4111111111111111",
]
SECRETS = ("ana.lima", "203.0.113.9", "tomasz", "4111")


# Where `make test` (.ci/setup-system) unpacks Debian's rsyslog and syslog-ng.
SYSTEM_DIR = Path(os.environ.get("PRIVACY_SYSTEM_DIR") or ROOT / ".venv" / "system")


def daemon_or_fail(found, name: str):
    if found is None:
        pytest.fail(f"{name} is missing: `make test` unpacks it (.ci/setup-system)")
    return found


def send_udp(port: int, messages: list[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for message in messages:
            sender.sendto(message.encode(), ("127.0.0.1", port))


def wait_for_lines(path: Path, count: int, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= count:
            break
        time.sleep(0.2)
    return path.read_text() if path.exists() else ""


def rsyslogd() -> tuple[Path, Path] | None:
    """(rsyslogd binary, module folder): unpacked by `make test`, or the system's."""
    roots = [SYSTEM_DIR / "rsyslog", Path("/")]
    for root in roots:
        binary = root / "usr/sbin/rsyslogd"
        modules = root / "usr/lib/x86_64-linux-gnu/rsyslog"
        if binary.exists() and (modules / "omprog.so").exists():
            return binary, modules
    return None


@pytest.mark.integration
def test_rsyslog_omprog_configuration_scrubs_messages(tmp_path):
    binary, modules = daemon_or_fail(rsyslogd(), "rsyslogd")
    shipped = (ROOT / "docs/syslog/rsyslog-scrub.conf").read_text()
    output = tmp_path / "scrubbed.log"
    port = free_port()
    config = shipped.replace("/opt/privacy/.venv/bin/privacy-scrub", str(BIN / "privacy-scrub"))
    config = config.replace("/var/log/scrubbed/messages.log", str(output))
    assert str(output) in config and str(BIN) in config
    (tmp_path / "rsyslog.conf").write_text(
        f'global(workDirectory="{tmp_path}")\n'
        f'module(load="imudp")\ninput(type="imudp" address="127.0.0.1" port="{port}")\n' + config
    )
    process = subprocess.Popen(
        [
            str(binary),
            "-n",
            "-f",
            str(tmp_path / "rsyslog.conf"),
            "-M",
            str(modules),
            "-i",
            str(tmp_path / "rsyslogd.pid"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(1.5)
        send_udp(port, MESSAGES)
        text = wait_for_lines(output, 2)
    finally:
        process.terminate()
        log = process.communicate(timeout=20)[0].decode(errors="replace")
    assert text.count("\n") == 2, log[-2000:]
    assert "[EMAIL_ADDRESS]" in text and "[IP_ADDRESS]" in text
    assert "user=[PERSON] card=[CREDIT_CARD]" in text
    for secret in SECRETS:
        assert secret not in text


def syslog_ng() -> tuple[Path, Path, dict] | None:
    """(syslog-ng binary, module folder, environment): unpacked by `make test`, or the system's."""
    roots = [SYSTEM_DIR / "syslog-ng", Path("/")]
    for root in roots:
        binary = root / "usr/sbin/syslog-ng"
        modules = sorted((root / "usr/lib/syslog-ng").glob("3.*/libhttp.so"))
        if binary.exists() and modules:
            env = dict(os.environ)
            env["LD_LIBRARY_PATH"] = str(root / "usr/lib/syslog-ng")  # libsyslog-ng itself
            return binary, modules[-1].parent, env
    return None


@pytest.mark.integration
def test_syslog_ng_http_configuration_scrubs_messages_through_the_relay(tmp_path):
    binary, modules, daemon_env = daemon_or_fail(syslog_ng(), "syslog-ng")
    input_port, relay_port, web_port = free_port(), free_port(), free_port()
    env = helpers.service_env(
        tmp_path / "instance",
        PRIVACY_BIND=f"127.0.0.1:{web_port}",
        PRIVACY_SCRUB_RELAY_URL=f"tcp://127.0.0.1:{relay_port}",
    )
    helpers.flask_cli(env, "db", "upgrade")
    token = helpers.create_account(env, "Acme", "admin@acme.example")["api_token"]

    shipped = (ROOT / "docs/syslog/syslog-ng-scrub.conf").read_text()
    output = tmp_path / "scrubbed" / "messages.log"
    replacements = {
        "prv_REPLACE_WITH_A_SCRUB_TOKEN": token,
        "http://127.0.0.1:8000/": f"http://127.0.0.1:{web_port}/",
        "port(5514)": f"port({relay_port})",
        "/var/log/scrubbed/messages.log": str(output),
    }
    for old, new in replacements.items():
        assert old in shipped, old
        shipped = shipped.replace(old, new)
    # Debian's main file defines s_src; here it is a UDP input. time-reopen(1): retry a
    # failed POST after a second instead of a minute.
    (tmp_path / "syslog-ng.conf").write_text(
        "@version: 3.38\noptions { time-reopen(1); };\n"
        f'source s_src {{ network(ip("127.0.0.1") port({input_port}) transport("udp")); }};\n'
        + shipped
    )
    args = [
        str(binary),
        "-F",
        f"--cfgfile={tmp_path / 'syslog-ng.conf'}",
        f"--module-path={modules}",
        f"--persist-file={tmp_path / 'syslog-ng.persist'}",
        f"--pidfile={tmp_path / 'syslog-ng.pid'}",
        f"--control={tmp_path / 'syslog-ng.ctl'}",
    ]
    gunicorn = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"]
    daemon_log = tmp_path / "syslog-ng.log"
    with helpers.running(args, daemon_env, daemon_log):
        time.sleep(1.5)
        # The first message arrives while the service is down: syslog-ng keeps it and
        # retries, so it is delivered once the service is up.
        send_udp(input_port, MESSAGES[:1])
        time.sleep(1.5)
        with helpers.running(gunicorn, env, tmp_path / "gunicorn.log"):
            helpers.wait_http(f"http://127.0.0.1:{web_port}/healthz")
            send_udp(input_port, MESSAGES[1:])
            text = wait_for_lines(output, 2)
    assert text.count("\n") == 2, daemon_log.read_text()[-2000:]
    first, second = text.splitlines()
    assert first.endswith("app: login ok for [EMAIL_ADDRESS] from [IP_ADDRESS]"), text
    assert second.endswith("app: checkout user=[PERSON] card=[CREDIT_CARD]"), text
    for secret in SECRETS:
        assert secret not in text
        assert secret not in (tmp_path / "gunicorn.log").read_text()
