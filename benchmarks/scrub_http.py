"""The scrub HTTP batch endpoint against the engine in-process, on the same lines.

Run: .venv/bin/python benchmarks/scrub_http.py [--corpus PATH] [--batch 1000] [--rounds 5]

Starts gunicorn (gunicorn.conf.py) on a throw-away SQLite instance, creates an
account, then sends the corpus lines to POST /api/v1/scrub in batches from one client (so
one worker works at a time) and compares lines/s with Scrubber.scrub_batch in this process
on the same batches, round by round, back to back. The issue's target: the HTTP batch
endpoint reaches at least 80% of the in-process rate per worker (the median of the rounds'
ratios); it also prints the workers' peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.inventory import Api  # noqa: E402
from benchmarks.inventory import free_port  # noqa: E402
from benchmarks.inventory import run_cli  # noqa: E402
from benchmarks.inventory import start_gunicorn  # noqa: E402
from benchmarks.inventory import stop_gunicorn  # noqa: E402
from benchmarks.inventory import wait_healthy  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "scrub-corpus" / "dev.jsonl"


def batches(lines: list[str], size: int) -> list[list[str]]:
    return [lines[i : i + size] for i in range(0, len(lines), size)]


def worker_peak_rss_mib(master: int) -> list[float]:
    """Peak RSS (VmHWM) of each of gunicorn's worker processes, in MiB."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    peaks = []
    for pid in children:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                peaks.append(int(row.split()[1]) / 1024)
    return peaks


def in_process_round(scrubber, lines: list[str], size: int) -> float:
    """Lines/s of one pass of Scrubber.scrub_batch over `lines` in batches of `size`."""
    start = time.perf_counter()
    for batch in batches(lines, size):
        scrubber.scrub_batch(batch)
    return len(lines) / (time.perf_counter() - start)


def http_round(api: Api, lines: list[str], size: int) -> tuple[float, int]:
    """Lines/s of one pass over POST /api/v1/scrub, and the lines masked for the budget."""
    masked = 0
    start = time.perf_counter()
    for batch in batches(lines, size):
        answer = api.json("POST", "/api/v1/scrub", {"lines": batch})
        masked += len(answer.get("unscrubbed_lines", []))
    return len(lines) / (time.perf_counter() - start), masked


def compare(
    lines: list[str], size: int, rounds: int
) -> tuple[list[tuple[float, float]], int, list[float]]:
    """(in-process, HTTP) lines/s per round, taken back to back so that the machine's other
    load weighs on both alike; the lines masked for the budget; the workers' peak RSS."""
    from privacy.scrubber.engine import Scrubber

    scrubber = Scrubber()
    scrubber.scrub_batch(lines[:size])  # warm-up: model caches, regex compilation
    with tempfile.TemporaryDirectory(prefix="scrub-http-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVACY_")}
        port = free_port()
        env.update(
            {
                "PRIVACY_INSTANCE_PATH": str(Path(tmp) / "instance"),
                "PRIVACY_BIND": f"127.0.0.1:{port}",
                "PRIVACY_LOG_LEVEL": "WARNING",
            }
        )
        run_cli(["db", "upgrade"], env, "migrate")
        created = json.loads(
            run_cli(["accounts", "create", "Bench", "--admin", "bench@example.org"], env, "account")
        )
        log = Path(tmp) / "gunicorn.log"
        process = start_gunicorn(env, log)
        try:
            wait_healthy(process, port, log)
            api = Api(port, created["api_token"], timeout=300)
            api.json("POST", "/api/v1/scrub", {"lines": lines[:size]})  # warm-up (loads spaCy)
            api.json("POST", "/api/v1/scrub", {"lines": lines[:size]})  # the other worker too
            pairs = []
            masked = 0
            for _ in range(rounds):
                local = in_process_round(scrubber, lines, size)
                remote, lost = http_round(api, lines, size)
                pairs.append((local, remote))
                masked += lost
            api.close()
            return pairs, masked, worker_peak_rss_mib(process.pid)
        finally:
            stop_gunicorn(process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    lines = [json.loads(row)["text"] for row in args.corpus.read_text().splitlines() if row]
    pairs, masked, peaks = compare(lines, args.batch, args.rounds)
    ratios = sorted(remote / local for local, remote in pairs)
    ratio = statistics.median(ratios)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"load average: {os.getloadavg()[0]:.2f}; {len(lines):,} lines, batches of {args.batch}")
    print(f"{'round':<8}{'in-process lines/s':>20}{'POST /api/v1/scrub':>20}{'ratio':>8}")
    for n, (local, remote) in enumerate(pairs, start=1):
        print(f"{n:<8}{local:>20,.0f}{remote:>20,.0f}{remote / local:>8.0%}")
    print(
        f"HTTP / in-process, median of {len(pairs)} back-to-back rounds: {ratio:.0%} "
        f"(target >= 80%: {'ok' if ratio >= 0.8 else 'MISSED'})"
    )
    print(f"lines masked for the time budget (PRIVACY_SCRUB_BUDGET_SECONDS): {masked}")
    worst = max(peaks, default=float("nan"))
    print(
        f"gunicorn workers' peak RSS: {', '.join(f'{p:.0f}' for p in peaks)} MiB "
        f"(target <= 200 MB: {'ok' if worst * 1.048576 <= 200 else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
