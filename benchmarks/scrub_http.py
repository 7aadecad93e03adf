"""The scrub HTTP batch endpoint against the engine in-process, on the same lines.

Run: .venv/bin/python benchmarks/scrub_http.py [--corpus PATH] [--batch 1000] [--rounds 2]

Starts gunicorn (gunicorn.conf.py) on a throw-away SQLite instance, creates an
account, then sends the corpus lines to POST /api/v1/scrub in batches from one client and
compares lines/s with Scrubber.scrub_batch in this process on the same batches. The issue's
target: the HTTP batch endpoint reaches at least 80% of the in-process rate.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
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


def in_process(lines: list[str], size: int, rounds: int) -> float:
    from privacy.scrubber.engine import Scrubber

    scrubber = Scrubber()
    scrubber.scrub_batch(lines[:size])  # warm-up: model caches, regex compilation
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for batch in batches(lines, size):
            scrubber.scrub_batch(batch)
        best = max(best, len(lines) / (time.perf_counter() - start))
    return best


def worker_peak_rss_mib(master: int) -> list[float]:
    """Peak RSS (VmHWM) of each of gunicorn's worker processes, in MiB."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    peaks = []
    for pid in children:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                peaks.append(int(row.split()[1]) / 1024)
    return peaks


def over_http(lines: list[str], size: int, rounds: int) -> tuple[float, int, list[float]]:
    """Best lines/s over `rounds`, the lines the service masked for its time budget, and
    the workers' peak RSS."""
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
            best = 0.0
            masked = 0
            for _ in range(rounds):
                start = time.perf_counter()
                for batch in batches(lines, size):
                    answer = api.json("POST", "/api/v1/scrub", {"lines": batch})
                    masked += len(answer.get("unscrubbed_lines", []))
                best = max(best, len(lines) / (time.perf_counter() - start))
            api.close()
            return best, masked, worker_peak_rss_mib(process.pid)
        finally:
            stop_gunicorn(process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    lines = [json.loads(row)["text"] for row in args.corpus.read_text().splitlines() if row]
    local = in_process(lines, args.batch, args.rounds)
    remote, masked, peaks = over_http(lines, args.batch, args.rounds)
    ratio = remote / local
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"load average: {os.getloadavg()[0]:.2f}; {len(lines):,} lines, batches of {args.batch}")
    print(f"{'path':<28}{'lines/s':>10}")
    print(f"{'in-process scrub_batch':<28}{local:>10,.0f}")
    print(f"{'POST /api/v1/scrub':<28}{remote:>10,.0f}")
    print(f"HTTP / in-process: {ratio:.0%} (target >= 80%: {'ok' if ratio >= 0.8 else 'MISSED'})")
    print(f"lines masked for the time budget (PRIVACY_SCRUB_BUDGET_SECONDS): {masked}")
    worst = max(peaks, default=float("nan"))
    print(
        f"gunicorn workers' peak RSS: {', '.join(f'{p:.0f}' for p in peaks)} MiB "
        f"(target <= 200 MB: {'ok' if worst * 1.048576 <= 200 else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
