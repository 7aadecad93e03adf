"""`privacy-scrub`: the log scrubber as a pipe filter and a file tool (no Flask, no database).

    tail -F app.log | privacy-scrub --no-ner            # live filter, one line in, one out
    privacy-scrub app.log.1 app.log.2 -o clean.log      # files, progress bar on a terminal
    privacy-scrub --findings --jobs 4 < app.log         # one JSON object per input line
    tail -F app.log | privacy-scrub --budget 2          # no batch holds the pipe over 2 s

Input is read as bytes and split after each "\\n"; each line keeps its own ending ("\\r\\n",
"\\n", or none for a last line without one). Bytes that are not UTF-8 pass through unchanged
(decoded with surrogateescape). --findings output is ASCII JSON, one object a line; there
undecodable bytes appear as "\\udcXX" escapes, and offsets count code points of the line
without its ending, one per undecodable byte.

With --budget SECONDS each batch (at most 256 lines, or what arrived in 50 ms) may take that
long; a line not scrubbed in time is written as "<UNSCRUBBED>" (with --findings, as an object
with "unscrubbed": true), never as it came, and the count is reported on stderr at the end.
Without it every line is scrubbed however long it takes (time grows linearly with a line's
length).

Exit status: 0 done, 1 input/output or processing error, 2 usage error (bad option, key file,
model or entity). Error messages never quote input lines.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import json
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import BinaryIO

from privacy.scrubber import config as scrub_config
from privacy.scrubber import operators

# A batch goes out when it has this many lines or its first line has waited this long: NER
# still runs batched, and a slow producer still sees each line within a fraction of a second.
BATCH_LINES = 256
BATCH_WAIT = 0.05
# Lines read ahead of the scrubber; bounds memory when the input is faster than scrubbing.
READ_AHEAD = 4096
EXIT_OK = 0
EXIT_ERROR = 1  # usage errors exit 2, from argparse
EXIT_INTERRUPTED = 130
PROG = "privacy-scrub"
_EOF = object()


@dataclass(frozen=True)
class Settings:
    """Everything a worker process needs to build its scrubber (picklable)."""

    model: str | None
    entities: frozenset[str]
    mode: str
    key: bytes | None
    findings: bool
    budget: float | None = None


class LineScrubber:
    """Scrubs batches of raw input lines into the bytes to write. Built once per process."""

    def __init__(self, settings: Settings) -> None:
        # Imported here, not at the top: presidio and spaCy take seconds to import, and
        # `--help` or a usage error should not wait for them.
        from privacy.scrubber import engine
        from privacy.scrubber import structured

        self._structured = structured
        self._scrubbed = engine.Scrubbed
        # spaCy loads with the first batch that has a window for NER, not before: a run
        # over lines that need none starts in a second.
        self.scrubber = engine.Scrubber(
            model=settings.model,
            config=scrub_config.ScrubConfig(entities=settings.entities),
            lazy_model=True,
        )
        self.operator = operators.Operator(settings.mode, key=settings.key)
        self.findings = settings.findings
        self.budget = settings.budget

    def __call__(self, raw_lines: Sequence[bytes]) -> tuple[bytes, int]:
        """(bytes to write, lines written as UNSCRUBBED because the budget ran out)."""
        texts, views, endings = [], [], []
        for raw in raw_lines:
            text, view, ending = _split(raw)
            texts.append(text)
            views.append(view)
            endings.append(ending)
        results = self.scrubber.scrub_batch(views, self.operator, budget=self.budget)
        masked = 0
        out = []
        for text, view, ending, result in zip(texts, views, endings, results, strict=True):
            masked += result.unscrubbed
            if view is not text and not result.unscrubbed:
                result = self._scrubbed(self._undecodable(text, view, result), result.findings)
            if self.findings:
                # ASCII JSON: undecodable bytes become "\udcXX" escapes, and no U+2028 or
                # U+0085 in a value can split the line for a reader using Unicode lines.
                out.append(json.dumps(result.as_dict()).encode("ascii") + b"\n")
            else:
                out.append(result.text.encode("utf-8", "surrogateescape") + ending)
        return b"".join(out), masked

    def _undecodable(self, text: str, view: str, result) -> str:
        """Replace findings in the original text, whose undecodable bytes the scrubber saw
        as U+FFFD (spaCy and the keyed operators cannot encode lone surrogates). Inside a
        finding the replacement character is kept so an operator can hash the value;
        outside, the original bytes are kept."""
        chars = list(text)
        for finding in result.findings:
            chars[finding.start : finding.end] = view[finding.start : finding.end]
        return self._structured.scrub("".join(chars), result.findings, self.operator)


def _split(raw: bytes) -> tuple[str, str, bytes]:
    """(text, view for the scrubber, line ending). `view is text` unless bytes were invalid."""
    if raw.endswith(b"\r\n"):
        body, ending = raw[:-2], b"\r\n"
    elif raw.endswith(b"\n"):
        body, ending = raw[:-1], b"\n"
    else:
        body, ending = raw, b""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", "surrogateescape")
        # One code point for one: offsets in the view are offsets in the text.
        view = "".join("\ufffd" if "\udc80" <= c <= "\udcff" else c for c in text)
        return text, view, ending
    return text, text, ending


# -- worker processes ----------------------------------------------------------------------

_worker: LineScrubber | None = None


def _init_worker(settings: Settings) -> None:
    global _worker
    # Ctrl-C reaches the whole process group; the parent decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker = LineScrubber(settings)


def _work(raw_lines: list[bytes]) -> tuple[bytes, int]:
    return _worker(raw_lines)  # set by _init_worker


# -- input -----------------------------------------------------------------------------------


class _Reader:
    """Reads the inputs in order on a thread, so the main thread can batch by time as well
    as by count without ever blocking on a slow pipe."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = paths
        self.lines: queue.Queue = queue.Queue(READ_AHEAD)
        threading.Thread(target=self._run, name="privacy-scrub-reader", daemon=True).start()

    def _run(self) -> None:
        try:
            for path in self.paths:
                if path == "-":
                    for line in sys.stdin.buffer:
                        self.lines.put(line)
                else:
                    with open(path, "rb") as stream:
                        for line in stream:
                            self.lines.put(line)
            self.lines.put(_EOF)
        except BaseException as exc:  # handed to the main thread, which reports it
            self.lines.put(exc)

    def _get(self, timeout: float):
        item = self.lines.get(timeout=timeout) if timeout > 0 else self.lines.get_nowait()
        if isinstance(item, BaseException):
            raise item
        return item

    def batches(self) -> Iterator[list[bytes]]:
        """Batches of raw lines in input order; an empty batch when the input is idle (so
        the caller can write results that finished meanwhile)."""
        while True:
            try:
                first = self._get(BATCH_WAIT)
            except queue.Empty:
                yield []
                continue
            if first is _EOF:
                return
            batch = [first]
            deadline = time.monotonic() + BATCH_WAIT
            while len(batch) < BATCH_LINES:
                try:
                    item = self._get(deadline - time.monotonic())
                except queue.Empty:
                    break
                if item is _EOF:
                    yield batch
                    return
                batch.append(item)
            yield batch


# -- output and progress -------------------------------------------------------------------


class _Progress:
    """Bytes processed, on stderr; a no-op when off."""

    def __init__(self, enabled: bool, total: int | None) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                dynamic_ncols=True,
                mininterval=0.2,
                desc=PROG,
            )

    def update(self, size: int) -> None:
        if self.bar is not None:
            self.bar.update(size)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_inline(settings: Settings, reader: _Reader, out: BinaryIO, progress: _Progress) -> int:
    """Scrub in this process; returns the lines written as UNSCRUBBED."""
    scrub = LineScrubber(settings)
    masked = 0
    for batch in reader.batches():
        if batch:
            data, count = scrub(batch)
            out.write(data)
            out.flush()
            masked += count
            progress.update(sum(map(len, batch)))
    return masked


def _run_pool(
    settings: Settings, jobs: int, reader: _Reader, out: BinaryIO, progress: _Progress
) -> int:
    """Batches go to worker processes; results are written in submission order. At most a
    few batches per worker are in flight, so memory stays bounded on large files. Returns
    the lines written as UNSCRUBBED."""
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=_worker_context(),
        initializer=_init_worker,
        initargs=(settings,),
    )
    pending: collections.deque = collections.deque()
    masked = 0

    def write_head() -> None:
        nonlocal masked
        future, size = pending.popleft()
        data, count = future.result()
        out.write(data)
        out.flush()
        masked += count
        progress.update(size)

    try:
        for batch in reader.batches():
            if batch:
                pending.append((pool.submit(_work, batch), sum(map(len, batch))))
            while pending and (pending[0][0].done() or len(pending) > 3 * jobs):
                write_head()
        while pending:
            write_head()
    except BaseException:
        _abort(pool)
        raise
    pool.shutdown()
    return masked


def _worker_context() -> multiprocessing.context.BaseContext:
    """Never plain fork: this process runs a reader thread. A fork server that has imported
    the engine once starts each worker without importing presidio and spaCy again (seconds
    of CPU per worker); spawn where there is no fork server."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["privacy.scrubber.engine"])
    return context


def _abort(pool: ProcessPoolExecutor) -> None:
    """Stop at once (Ctrl-C, closed output, failed batch): queued batches are cancelled and
    busy or still-starting workers are ended, since their output would be discarded.
    ProcessPoolExecutor has no public way to end busy workers before Python 3.14."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    processes = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


# -- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Replace personal data in log lines. Reads FILEs (or standard input) line by "
            "line and writes every line, scrubbed, in the same order."
        ),
    )
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="input files; none or '-' is standard input"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    parser.add_argument(
        "--findings",
        action="store_true",
        help='one JSON object per input line: {"text": scrubbed, "findings": [...]}',
    )
    parser.add_argument(
        "--mode",
        choices=("redact", "mask", "pseudonym", "token"),
        default="redact",
        help="how findings are replaced (default: redact)",
    )
    parser.add_argument(
        "--key-file",
        metavar="PATH",
        help="key for pseudonym (>= 32 bytes) or token (64 bytes) mode: raw bytes or base64",
    )
    parser.add_argument(
        "--entities",
        metavar="LIST",
        default="",
        help="comma-separated opt-in entities on top of the defaults, e.g. UUID,URL",
    )
    ner = parser.add_mutually_exclusive_group()
    ner.add_argument(
        "--no-ner", action="store_true", help="no spaCy NER (faster; patterns still find most)"
    )
    ner.add_argument("--model", metavar="NAME", help="another installed spaCy model for NER")
    parser.add_argument(
        "-j",
        "--jobs",
        type=_job_count,
        default=1,
        metavar="N",
        help="worker processes (default 1; 0 = one per CPU)",
    )
    parser.add_argument(
        "--budget",
        type=_budget,
        metavar="SECONDS",
        help="time each batch of lines may take; lines not scrubbed in time are written as "
        "<UNSCRUBBED> (default: no limit)",
    )
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_const",
        const=True,
        help="always show a progress bar on stderr",
    )
    progress.add_argument(
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        help="never show one (default: for files, when stderr is a terminal and the output is not)",
    )
    return parser


def _job_count(value: str) -> int:
    try:
        jobs = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if jobs < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return jobs or os.cpu_count() or 1


def _budget(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number of seconds") from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return seconds


def read_key(path: str) -> bytes:
    """The key in `path`: base64 text (surrounding whitespace ignored) or raw bytes.

    Raises OSError if the file cannot be read.
    """
    with open(path, "rb") as stream:
        data = stream.read()
    try:
        decoded = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        return data
    # Raw random bytes are almost never valid base64 text of a plausible key length.
    return decoded if len(decoded) >= 32 else data


def _settings(args, parser: argparse.ArgumentParser) -> Settings:
    key = None
    if args.mode in ("pseudonym", "token"):
        if not args.key_file:
            parser.error(f"--mode {args.mode} needs --key-file")
        try:
            key = read_key(args.key_file)
        except OSError as exc:
            parser.error(f"cannot read --key-file {args.key_file}: {exc.strerror}")
    elif args.key_file:
        parser.error("--key-file is only used with --mode pseudonym or token")
    try:
        operators.Operator(args.mode, key=key)
    except operators.OperatorError as exc:
        parser.error(f"--key-file: {exc}; {args.key_file} gives {len(key or b'')} bytes")

    extra = {e.strip().upper() for e in args.entities.split(",") if e.strip()}
    try:
        config = scrub_config.ScrubConfig(entities=scrub_config.DEFAULT_ENTITIES | extra)
    except ValueError as exc:
        parser.error(
            f"--entities: {exc}; opt-in entities are "
            f"{', '.join(sorted(scrub_config.OPTIONAL_ENTITIES))}"
        )

    model = None if args.no_ner else (args.model or scrub_config.DEFAULT_MODEL)
    if model and not scrub_config.model_installed(model):
        parser.error(
            f"spaCy model {model!r} is not installed (use --no-ner, or --model with an "
            f"installed model package)"
        )
    return Settings(model, config.entities, args.mode, key, args.findings, args.budget)


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (argparse exits 2 on usage errors)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    inputs = args.files or ["-"]
    settings = _settings(args, parser)

    files = [p for p in inputs if p != "-"]
    for path in files:
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            return _fail(f"cannot read {path}: {exc.strerror}")
    to_stdout = args.output in (None, "-")
    if not to_stdout:
        for path in files:
            if os.path.exists(args.output) and os.path.samefile(path, args.output):
                parser.error(f"--output {args.output} is also an input file")
    show = args.progress
    if show is None:
        show = bool(files) and sys.stderr.isatty() and not (to_stdout and sys.stdout.isatty())
    total = None if len(files) < len(inputs) else sum(os.path.getsize(p) for p in files)

    try:
        out = sys.stdout.buffer if to_stdout else open(args.output, "wb")
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror}")
    progress = _Progress(show, total)
    error = None
    masked = 0
    try:
        reader = _Reader(inputs)
        if args.jobs == 1:
            masked = _run_inline(settings, reader, out, progress)
        else:
            masked = _run_pool(settings, args.jobs, reader, out, progress)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, like other filters.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OSError as exc:
        error = _io_error(exc)
    except BrokenProcessPool:
        error = "a worker process died"
    except Exception as exc:
        # The type only: a message or traceback could quote the log line being scrubbed.
        error = f"scrubbing failed ({type(exc).__name__})"
    finally:
        progress.close()
        if not to_stdout:
            try:
                out.close()
            except OSError as exc:
                error = error or _io_error(exc)
    if masked:
        print(
            f"{PROG}: {masked} lines could not be scrubbed within --budget {args.budget:g} s "
            "and were written as <UNSCRUBBED>",
            file=sys.stderr,
        )
    return _fail(error) if error else EXIT_OK


def _io_error(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"input/output error{where}: {exc.strerror or type(exc).__name__}"


if __name__ == "__main__":
    sys.exit(main())
