"""The scrubber never reaches the network: not for its spaCy model, not for a suffix list."""

from __future__ import annotations

import subprocess
import sys

PROBE = r"""
import socket, sys
attempts = []
def refuse(self, address, *args, **kwargs):
    attempts.append(address)
    raise OSError("network disabled for this test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = lambda address, *a, **k: refuse(None, address)
socket.getaddrinfo = lambda host, *a, **k: refuse(None, host)

from privacy.scrubber.config import DEFAULT_ENTITIES, ScrubConfig
from privacy.scrubber.engine import Scrubber
from privacy.scrubber.operators import Operator
lines = [
    "GET https://shop.example.co.uk/verify?email=ana.lima%40example.org HTTP/1.1",
    "Payment declined for Henrietta Lacks: card 4111 1111 1111 1111",
    "customer Marta Nowak <marta@example.pl> from 203.0.113.9",
]
for config in (ScrubConfig(), ScrubConfig(entities=DEFAULT_ENTITIES | {"URL", "UUID", "LOCATION"})):
    scrubber = Scrubber(config=config)
    results = scrubber.scrub_batch(lines, Operator("pseudonym", b"k" * 32))
    assert all(r.findings for r in results), results
print("attempts", len(attempts))
sys.exit(1 if attempts else 0)
"""


def test_building_and_scanning_attempt_no_network_connection():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "attempts 0" in result.stdout
