"""Start-up benchmark: what every process pays before it does any work.

Prints, each as the median of --runs runs (after one warm-up run):

  import wsgi           `python -c "import wsgi"`: the app factory and everything it imports;
                        and whether presidio and spaCy were among those imports
  flask --help          `flask --app wsgi --help`
  accounts create       `flask --app wsgi accounts create ...` on a migrated throw-away
                        instance (a new account each run)
  pytest --collect-only the suite's collection
  privacy-scrub         the command line on a file of made-up log lines that need no NER
                        (addresses, a login name, timestamps), and on one line that does
  worker RSS            a gunicorn web worker's resident memory as its first answer
                        (/healthz) comes back, and again once the log safety net has
                        scrubbed that request's log line (it loads the scrubber's engine
                        on its first record); started with gunicorn.conf.py

The goal the layering work sets: at most 1.5 s for `flask --help` and `accounts create`,
and neither presidio nor spaCy loaded by `import wsgi`; issue 14's: at most 1 s for
`privacy-scrub` when no line needs NER. Misses print MISSED; only errors give a non-zero
exit.

    .venv/bin/python benchmarks/startup.py
    .venv/bin/python benchmarks/startup.py --runs 3 --skip-pytest
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GOAL_SECONDS = 1.5
SCRUB_GOAL_SECONDS = 1.0
NO_NER_LINES = (
    "Jun 14 15:16:01 combo sshd[19939]: Failed password for invalid user marta from "
    "81.2.69.142 port 52144 ssh2\n"
    "2025-06-30T12:04:33.120Z INFO request done user=ana.lima ip=2001:db8::7 took=12ms\n"
    "2025-06-30 12:04:35,001 WARNING retry 3 of 5 for job 4f1c2a9e in 30 s\n"
)
NER_LINE = "Reviewed with Hiroshi Tanaka yesterday\n"
HEAVY = ("presidio_analyzer", "presidio_anonymizer", "spacy")


def environment(instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVACY_")}
    env.update({"PRIVACY_INSTANCE_PATH": str(instance), "PYTHONUNBUFFERED": "1"})
    return env


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start


def median_of(runs: int, args_for, env: dict[str, str]) -> tuple[float, float, float]:
    timed(args_for(-1), env)  # warm-up: the file cache, .pyc files
    times = [timed(args_for(i), env) for i in range(runs)]
    return statistics.median(times), min(times), max(times)


def heavy_modules(env: dict[str, str]) -> list[str]:
    probe = f"import sys, wsgi; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return [name for name in result.stdout.strip().split(",") if name]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_mib(pid: str) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def worker_rss_mib(env: dict[str, str]) -> tuple[float, float]:
    """Resident memory of one gunicorn web worker: as its first answer (/healthz) comes back,
    and once that answer's log line went through the log safety net, which loads the
    scrubber's engine (Presidio, spaCy) on the first record it scrubs: read until it stops
    growing (or 30 s)."""
    port = free_port()
    env = {**env, "PRIVACY_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"}
    args = [str(BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"), "wsgi:app"]
    master = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
        first = _rss_mib(children[0])
        settled, steady_since, until = first, time.monotonic(), time.monotonic() + 30
        while time.monotonic() < until and time.monotonic() - steady_since < 3:
            time.sleep(0.25)
            now = _rss_mib(children[0])
            if now > settled + 1:
                settled, steady_since = now, time.monotonic()
        return first, settled
    finally:
        master.terminate()
        master.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-pytest", action="store_true")
    options = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="privacy-startup-"))
    try:
        env = environment(instance)
        flask = [str(BIN / "flask"), "--app", "wsgi"]
        subprocess.run(
            [*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        rows = []
        heavy = heavy_modules(env)
        rows.append(
            (
                "import wsgi",
                median_of(options.runs, lambda _: [sys.executable, "-c", "import wsgi"], env),
                None,
            )
        )
        rows.append(
            (
                "flask --help",
                median_of(options.runs, lambda _: [*flask, "--help"], env),
                GOAL_SECONDS,
            )
        )
        rows.append(
            (
                "accounts create",
                median_of(
                    options.runs,
                    lambda i: [
                        *flask,
                        "accounts",
                        "create",
                        f"Bench {i + 2}",
                        "--admin",
                        f"a{i + 2}@bench.example",
                    ],
                    env,
                ),
                GOAL_SECONDS,
            )
        )
        no_ner = instance / "no-ner.log"
        no_ner.write_text(NO_NER_LINES, encoding="utf-8")
        ner = instance / "ner.log"
        ner.write_text(NER_LINE, encoding="utf-8")
        scrub = [str(BIN / "privacy-scrub"), "-o", os.devnull]
        rows.append(
            (
                "privacy-scrub, no NER",
                median_of(options.runs, lambda _: [*scrub, str(no_ner)], env),
                SCRUB_GOAL_SECONDS,
            )
        )
        rows.append(
            ("privacy-scrub, NER", median_of(options.runs, lambda _: [*scrub, str(ner)], env), None)
        )
        if not options.skip_pytest:
            collect = [str(BIN / "pytest"), "--collect-only", "-q", "-p", "no:cacheprovider"]
            rows.append(
                ("pytest --collect-only", median_of(options.runs, lambda _: collect, env), None)
            )
        rss = worker_rss_mib(env)
    finally:
        shutil.rmtree(instance, ignore_errors=True)

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    load = os.getloadavg()[0]
    print(
        f"Start-up benchmark: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"commit {commit}, load average {load:.2f}"
    )
    print(f"command: .venv/bin/python benchmarks/startup.py --runs {options.runs}")
    print()
    print(f"{'what':<24}{'median s':>10}{'min s':>9}{'max s':>9}  goal")
    for name, (median, low, high), goal in rows:
        verdict = "" if goal is None else ("ok" if median <= goal else "MISSED") + f" (<= {goal} s)"
        print(f"{name:<24}{median:>10.2f}{low:>9.2f}{high:>9.2f}  {verdict}")
    print(f"{'web worker RSS':<24}{rss[0]:>10.0f} MiB as it answers its first request")
    print(f"{'':<24}{rss[1]:>10.0f} MiB once its log net scrubbed that request's log line")
    loaded = ", ".join(heavy) if heavy else "none"
    verdict = "ok" if not heavy else "MISSED"
    print(f"loaded by `import wsgi` of presidio/spaCy: {loaded}  {verdict} (goal: none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
