"""The rsyslog configuration in docs/ scrubs messages with the real rsyslogd."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from privacy import ROOT
from tests.helpers import BIN
from tests.helpers import free_port


def rsyslogd() -> tuple[Path, Path] | None:
    """(rsyslogd binary, module folder): an unpacked package (.ci/run) or the system's."""
    unpacked = os.environ.get("PRIVACY_TEST_RSYSLOG_ROOT")
    roots = [Path(unpacked)] if unpacked else []
    roots.append(Path("/"))
    for root in roots:
        binary = root / "usr/sbin/rsyslogd"
        modules = root / "usr/lib/x86_64-linux-gnu/rsyslog"
        if binary.exists() and (modules / "omprog.so").exists():
            return binary, modules
    return None


@pytest.mark.integration
def test_rsyslog_omprog_configuration_scrubs_messages(tmp_path):
    found = rsyslogd()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("rsyslogd is missing: .ci/run unpacks Debian's rsyslog package")
        pytest.skip("rsyslogd not installed")
    binary, modules = found
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
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        messages = [
            "<14>Nov 29 16:55:00 web app: login ok for ana.lima@example.org from 203.0.113.9",
            "<14>Nov 29 16:55:01 web app: checkout user=tomasz.wolski card=4111111111111111",
        ]
        for message in messages:
            sender.sendto(message.encode(), ("127.0.0.1", port))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if output.exists() and output.read_text().count("\n") >= 2:
                break
            time.sleep(0.2)
    finally:
        process.terminate()
        log = process.communicate(timeout=20)[0].decode(errors="replace")
    text = output.read_text() if output.exists() else ""
    assert text.count("\n") == 2, log[-2000:]
    assert "[EMAIL_ADDRESS]" in text and "[IP_ADDRESS]" in text
    assert "user=[PERSON] card=[CREDIT_CARD]" in text
    for secret in ("ana.lima", "203.0.113.9", "tomasz", "4111"):
        assert secret not in text
