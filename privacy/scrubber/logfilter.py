"""Scrubbing for Python logging: a queueing handler (the caller never waits) and a filter.

`ScrubbingHandler` wraps the handlers that write log records out. On the caller's thread it
only freezes the record: a shallow copy with the message rendered (`msg % args`) and
`args` dropped, put on a bounded queue without waiting. A background thread takes the
records off in batches, renders tracebacks, scrubs the message, traceback, stack and
`extra` values with one `Scrubber.scrub_batch` call per batch and passes the copies to the
wrapped handlers, in order. The caller's record and its arguments are never changed.
When the queue is full the record is dropped and counted; the drain thread reports the
count through the wrapped handlers as a WARNING, so a loss is never silent.

    from privacy.scrubber import logfilter
    logging.basicConfig(level=logging.INFO)
    logfilter.install(model=None)          # wraps the root logger's handlers

`ScrubbingFilter` is the synchronous alternative: it scrubs on the caller's thread (a
fraction of a millisecond a line without NER, more with it) and rewrites the record it is
given, for the programs that cannot have a background thread.

Both take `budget=SECONDS`: the time one batch (the filter: one record) may take. A line of
a message, traceback or extra value not scrubbed in time becomes "<UNSCRUBBED>", never
what it was; the handler counts such records and reports them like drops. Without a
budget (the default) every record is scrubbed however long it takes: a huge record then
delays the ones behind it, and the bounded queue drops (and counts) what does not fit.

Neither imports Flask or the database, and importing this module does not import Presidio
or spaCy: the engine is loaded when the first record is scrubbed.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from privacy.scrubber import operators
from privacy.scrubber.config import DEFAULT_MODEL
from privacy.scrubber.config import UNSCRUBBED
from privacy.scrubber.config import ScrubConfig
from privacy.scrubber.operators import REDACT

if TYPE_CHECKING:
    from privacy.scrubber.engine import Scrubber

LOGGER_NAME = "privacy.scrubber"
DEFAULT_MAXSIZE = 10_000
DEFAULT_BATCH = 256
DEFAULT_REPORT_INTERVAL = 10.0

# Attributes every LogRecord has; anything else on a record came from `extra=` or a filter.
_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None, "", None))
) | {"message", "asctime", "exc_text", "stack_info", "taskName"}
_PLAIN = (bool, int, float, type(None))
_STOP = object()
_default_formatter = logging.Formatter()
_shared: dict[str | None, Scrubber] = {}
_shared_lock = threading.Lock()
_live: weakref.WeakSet[ScrubbingHandler] = weakref.WeakSet()


class ScrubbingHandler(logging.Handler):
    """Scrub records on a background thread, then hand them to `targets`.

    `targets` is a handler or a list of them; their levels and filters apply on the drain
    thread, so a filter that reads the caller's context (a request id, say) belongs on this
    handler instead. Give `scrubber`, or the handler builds one on its drain thread
    (`Scrubber(model=model, config=config)`, shared by handlers with the same model) so the
    caller never waits for spaCy. `maxsize` bounds the queue; records beyond it are dropped,
    counted in `dropped` and reported every `report_interval` seconds and at close.
    `budget` is the time one batch may take (see the module docstring); records with text
    masked for it are counted in `masked` and reported the same way.

    The records the targets receive are copies: `msg` is the scrubbed message, `args` is
    None, `exc_info` is None and `exc_text` holds the scrubbed traceback (so no formatter
    can render the live exception again), `stack_info` is scrubbed, string `extra` values
    are scrubbed and other objects are replaced by their scrubbed repr. Set a formatter on
    this handler to change how tracebacks are rendered.
    """

    def __init__(
        self,
        targets: logging.Handler | Iterable[logging.Handler],
        *,
        scrubber: Scrubber | None = None,
        model: str | None = DEFAULT_MODEL,
        config: ScrubConfig | None = None,
        operator: operators.Operator = REDACT,
        maxsize: int = DEFAULT_MAXSIZE,
        batch_size: int = DEFAULT_BATCH,
        report_interval: float = DEFAULT_REPORT_INTERVAL,
        level: int | str = logging.NOTSET,
        budget: float | None = None,
    ) -> None:
        super().__init__(level)
        if maxsize < 1 or batch_size < 1:
            raise ValueError("maxsize and batch_size must be at least 1")
        self.budget = budget
        if isinstance(targets, logging.Handler):
            targets = [targets]
        self._targets: tuple[logging.Handler, ...] = tuple(targets)
        self._scrubber = scrubber
        self._scrubber_error: BaseException | None = None
        self._model = model
        self._config = config
        self.operator = operator
        self.maxsize = maxsize
        self.batch_size = batch_size
        self.report_interval = report_interval
        self._closed = False
        self._reset()
        _live.add(self)
        self._start()

    # -- the caller's thread ---------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: deque appends are atomic and emit touches nothing else shared.
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):  # Python 3.12+: a filter may swap the record
            record = rv
        if rv:
            self.emit(record)
        return bool(rv)

    def emit(self, record: logging.LogRecord) -> None:
        frozen = self._freeze(record)
        if self._thread is None and not self._closed:
            self._start()  # first record in a forked child
        if self._closed:
            self._process([frozen])
            return
        # A deque and an event rather than queue.Queue: half the cost on this path. Under
        # concurrent callers the bound may be passed by one record per thread.
        buffer = self._buffer
        if len(buffer) >= self.maxsize:
            with self._counter_lock:
                self._dropped += 1
            return
        buffer.append(frozen)
        if not self._wake.is_set():  # checked after the append; the drain clears first
            self._wake.set()

    def _freeze(self, record: logging.LogRecord) -> logging.LogRecord:
        """A copy that no longer refers to the caller's arguments.

        The message is rendered here, not on the drain thread, because the arguments may be
        mutable objects the caller changes right after the call. The traceback is rendered
        on the drain thread: that costs 50 to 300 us, far over the caller's budget, and an
        exception and its traceback rarely change once raised (the frames' locals, which
        do, are not rendered). The copy holds the exception until then.
        """
        frozen = logging.LogRecord.__new__(type(record))
        frozen.__dict__ = record.__dict__.copy()
        try:
            frozen.msg = record.getMessage()
        except Exception:
            frozen.msg = _unrenderable(record)
        frozen.args = None
        if record.exc_text:
            frozen.exc_info = None  # an earlier handler rendered it already
        return frozen

    # -- the drain thread ------------------------------------------------------------------

    def _run(self, buffer: collections.deque, wake: threading.Event) -> None:
        # The scrubber is built with the first batch, not before: a short-lived process
        # (a CLI command) that logs nothing should not pay for it.
        while True:
            wake.clear()  # before looking, so an append after the look sets it again
            if not buffer and not wake.wait(self.report_interval or None):
                self._report()
                continue
            if self._drain(buffer):
                return

    def _drain(self, buffer: collections.deque) -> bool:
        """Process `buffer` in batches of up to `batch_size` records until it is empty,
        releasing flush markers in order. True if it met the stop marker."""
        while True:
            batch: list[logging.LogRecord] = []
            marker = None
            while buffer and len(batch) < self.batch_size:
                item = buffer.popleft()
                if isinstance(item, logging.LogRecord):
                    batch.append(item)
                else:
                    marker = item
                    break
            self._process(batch)
            self._report()  # also during a flood that never empties the buffer
            if marker is _STOP:
                return True
            if marker is not None:
                marker.set()  # a flush marker: everything before it reached the targets
            elif not buffer:
                return False

    def _process(self, records: list[logging.LogRecord]) -> None:
        """Scrub `records` in one batch and hand them to the targets; never raises."""
        if not records:
            return
        try:
            scrubber = self._get_scrubber()
            masked = _scrub_records(scrubber, records, self.operator, self.formatter, self.budget)
        except Exception as exc:
            with self._counter_lock:
                self._failed += len(records)
                self._failure = type(exc).__name__
            return
        if masked:
            with self._counter_lock:
                self._masked += masked
        for record in records:
            self._deliver(record)
        self._handled += len(records)

    def _deliver(self, record: logging.LogRecord) -> None:
        for target in self._targets:
            if record.levelno >= target.level:
                try:
                    target.handle(record)
                except Exception:
                    target.handleError(record)

    def _get_scrubber(self) -> Scrubber:
        if self._scrubber is None:
            if self._scrubber_error is not None:
                raise self._scrubber_error
            try:
                self._scrubber = _build_scrubber(self._model, self._config)
            except Exception as exc:
                self._scrubber_error = exc
                self._deliver(
                    _notice(
                        logging.ERROR,
                        "privacy.scrubber: could not build the scrubber, log records are "
                        f"dropped until this is fixed: {type(exc).__name__}: {exc}",
                    )
                )
                raise
        return self._scrubber

    def _report(self, *, force: bool = False) -> None:
        """Report drops and failures not reported yet, at most every `report_interval`."""
        now = time.monotonic()
        if not force and now - self._last_report < self.report_interval:
            return
        with self._counter_lock:
            dropped = self._dropped - self._reported_dropped
            failed = self._failed - self._reported_failed
            masked = self._masked - self._reported_masked
            self._reported_dropped += dropped
            self._reported_failed += failed
            self._reported_masked += masked
            failure = self._failure
        if dropped:
            self._deliver(
                _notice(
                    logging.WARNING,
                    f"privacy.scrubber: dropped {dropped} log records (queue full)",
                )
            )
        if failed:
            self._deliver(
                _notice(
                    logging.ERROR,
                    f"privacy.scrubber: dropped {failed} log records that could not be "
                    f"scrubbed ({failure})",
                )
            )
        if masked:
            self._deliver(
                _notice(
                    logging.WARNING,
                    f"privacy.scrubber: {masked} log records had text masked as {UNSCRUBBED}: "
                    f"not scrubbed within the budget of {self.budget:g} s",
                )
            )
        if dropped or failed or masked:
            self._last_report = now

    # -- control ---------------------------------------------------------------------------

    @property
    def targets(self) -> tuple[logging.Handler, ...]:
        return self._targets

    def add_target(self, handler: logging.Handler) -> None:
        if handler not in self._targets:
            self._targets = (*self._targets, handler)

    @property
    def dropped(self) -> int:
        """Records dropped because the queue was full, since start (or fork)."""
        return self._dropped

    def stats(self) -> dict[str, int]:
        """Counters since start (or since the fork that made this process)."""
        return {
            "queued": len(self._buffer),
            "handled": self._handled,
            "dropped": self._dropped,
            "failed": self._failed,
            "masked": self._masked,
            "maxsize": self.maxsize,
        }

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every queued record reached the targets, then flush them.

        Returns False if `timeout` seconds passed first (the records stay queued).
        """
        drained = True
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._drain(self._buffer)  # closed, or a forked child that has not logged yet
        elif threading.current_thread() is not thread:
            marker = threading.Event()
            self._buffer.append(marker)  # markers pass the bound
            self._wake.set()
            drained = marker.wait(timeout)
        for target in self._targets:
            try:
                target.flush()
            except (OSError, ValueError):
                pass  # a stream closed under us at exit, as logging.shutdown tolerates
        return drained

    def close(self, timeout: float = 10.0) -> None:
        """Drain the queue, stop the thread, report what was dropped. The targets stay
        open: they belong to whoever made them. Records emitted later are scrubbed on the
        caller's thread."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._buffer.append(_STOP)
            self._wake.set()
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self._drain(self._buffer)  # records that raced the stop marker
        self._report(force=True)
        _live.discard(self)
        super().close()

    def _reset(self) -> None:
        """Fresh buffer, locks, counters and thread: at start, and in a forked child, whose
        copies may hold a locked lock and records that belong to the parent."""
        self._buffer: collections.deque = collections.deque()
        self._wake = threading.Event()
        self._counter_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._dropped = self._failed = self._handled = self._masked = 0
        self._reported_dropped = self._reported_failed = self._reported_masked = 0
        self._failure = ""
        self._last_report = float("-inf")

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._closed:
                thread = threading.Thread(
                    target=self._run,
                    args=(self._buffer, self._wake),
                    name=f"{LOGGER_NAME}-drain",
                    daemon=True,  # atexit flushes; a stuck scan must not hold the exit
                )
                thread.start()
                self._thread = thread


class ScrubbingFilter(logging.Filter):
    """Scrub a record in place on the caller's thread; the synchronous alternative.

    It rewrites the record it is given (never the argument objects): `msg` becomes the
    scrubbed message, `args` None, `exc_text` the scrubbed traceback and `exc_info` None,
    and `stack_info` and `extra` values are scrubbed. Every handler after it sees that.
    Attach it to handlers, not loggers: a logger's filters skip records from child loggers.
    The caller waits for the scan (and, without `scrubber`, for the first build), so
    prefer `ScrubbingHandler` where a thread is possible; `budget` bounds that wait per
    record (text not scrubbed in time becomes "<UNSCRUBBED>").
    """

    def __init__(
        self,
        name: str = "",
        *,
        scrubber: Scrubber | None = None,
        model: str | None = DEFAULT_MODEL,
        config: ScrubConfig | None = None,
        operator: operators.Operator = REDACT,
        budget: float | None = None,
    ) -> None:
        super().__init__(name)
        self._scrubber = scrubber
        self._model = model
        self._config = config
        self.operator = operator
        self.budget = budget

    def filter(self, record: logging.LogRecord) -> bool:
        if not super().filter(record):
            return False
        if self._scrubber is None:
            self._scrubber = _build_scrubber(self._model, self._config)
        try:
            record.msg = record.getMessage()
        except Exception:
            record.msg = _unrenderable(record)
        record.args = None
        _scrub_records(self._scrubber, [record], self.operator, None, self.budget)
        return True


def install(
    logger: logging.Logger | str | None = None,
    *,
    scrubber: Scrubber | None = None,
    maxsize: int = DEFAULT_MAXSIZE,
    operator: operators.Operator = REDACT,
    model: str | None = DEFAULT_MODEL,
    **options: Any,
) -> ScrubbingHandler:
    """Route every handler of `logger` (the root logger by default) through one
    ScrubbingHandler and return it. Calling it again adds handlers attached since to the
    same ScrubbingHandler. A logger without handlers gets a stderr handler in
    `logging.basicConfig`'s format. Loggers that do not propagate to `logger` and have
    their own handlers are not covered.
    """
    if logger is None or isinstance(logger, str):
        logger = logging.getLogger(logger)
    current = [h for h in logger.handlers if isinstance(h, ScrubbingHandler)]
    others = [h for h in logger.handlers if not isinstance(h, ScrubbingHandler)]
    if current:
        handler = current[0]
        for target in others:
            handler.add_target(target)
    else:
        if not others:
            default = logging.StreamHandler()
            default.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
            others = [default]
        handler = ScrubbingHandler(
            others, scrubber=scrubber, maxsize=maxsize, operator=operator, model=model, **options
        )
        logger.addHandler(handler)
    for target in others:
        logger.removeHandler(target)
    return handler


def scrubbing_handler(
    handlers: Any, *, operator: str | operators.Operator = "redact", **options: Any
) -> ScrubbingHandler:
    """Factory for `logging.config.dictConfig`: `{"()": "privacy.scrubber.logfilter.
    scrubbing_handler", "handlers": [...], "model": None, "maxsize": 10000}`.

    Each item of `handlers` is a handler, an inline handler configuration (a dict with
    "class", "formatter"...) or the name of a handler of the same configuration. dictConfig
    builds handlers in name order, so a named one must sort before this handler's name;
    inline configurations have no such constraint. `operator` is a mode name or an
    Operator (modes with keys need an Operator, e.g. through "ext://").
    """
    configurator = getattr(handlers, "configurator", None)
    if isinstance(handlers, str | dict | logging.Handler):
        handlers = [handlers]
    targets = []
    for index in range(len(handlers)):
        item = handlers[index]  # indexing a dictConfig list resolves "cfg://" references
        if isinstance(item, str) and configurator is not None:
            named = dict.get(configurator.config.get("handlers", {}), item)
            if not isinstance(named, logging.Handler):
                raise ValueError(
                    f"handler {item!r} is not configured yet: dictConfig builds handlers in "
                    "name order, so give the scrubbing handler a name that sorts after it, "
                    "or configure the target inline"
                )
            item = named
        elif isinstance(item, dict) and configurator is not None:
            item = configurator.configure_handler(item)
        if not isinstance(item, logging.Handler):
            raise ValueError(f"not a handler: {item!r}")
        targets.append(item)
    if isinstance(operator, str):
        operator = operators.Operator(operator)
    return ScrubbingHandler(targets, operator=operator, **options)


# -- shared helpers -------------------------------------------------------------------------


def _scrub_records(
    scrubber: Scrubber,
    records: Sequence[logging.LogRecord],
    operator: operators.Operator,
    formatter: logging.Formatter | None,
    budget: float | None = None,
) -> int:
    """Replace the text fields of `records` with scrubbed text, in one scrub_batch call;
    returns how many records had a line masked because `budget` ran out.

    A traceback is rendered to `exc_text` first and `exc_info` dropped, so no formatter
    renders the unscrubbed exception again. Multi-line texts are scanned line by line, the
    unit the engine is built for. Empty lines are not scanned.
    """
    fields: list[tuple[logging.LogRecord, str, int, int]] = []
    lines: list[str] = []
    for record in records:
        if record.exc_info:
            if not record.exc_text:
                try:
                    record.exc_text = (formatter or _default_formatter).formatException(
                        record.exc_info
                    )
                except Exception:
                    record.exc_text = "<traceback could not be rendered>"
            record.exc_info = None
        for name, text in _texts(record):
            parts = text.split("\n")
            fields.append((record, name, len(lines), len(parts)))
            lines.extend(parts)
    todo = [i for i, line in enumerate(lines) if line.strip()]
    texts = [lines[i] for i in todo]
    if budget is None:
        results = scrubber.scrub_batch(texts, operator)
    else:
        results = scrubber.scrub_batch(texts, operator, budget=budget)
    masked_lines = set()
    for i, result in zip(todo, results, strict=True):
        lines[i] = result.text
        if getattr(result, "unscrubbed", False):
            masked_lines.add(i)
    masked = set()
    for record, name, start, count in fields:
        setattr(record, name, "\n".join(lines[start : start + count]))
        if masked_lines and any(i in masked_lines for i in range(start, start + count)):
            masked.add(id(record))
    for record in records:
        record.message = record.msg
    return len(masked)


def _texts(record: logging.LogRecord) -> list[tuple[str, str]]:
    """(attribute, text) pairs to scrub: message, traceback, stack and extra values."""
    msg = record.msg if isinstance(record.msg, str) else str(record.msg)
    texts = [("msg", msg)]
    if record.exc_text:
        texts.append(("exc_text", record.exc_text))
    if record.stack_info:
        texts.append(("stack_info", record.stack_info))
    for name, value in list(vars(record).items()):
        if name in _STANDARD or isinstance(value, _PLAIN):
            continue
        if not isinstance(value, str):
            # The drain thread may see a mutable extra after the caller changed it; only
            # the message and arguments are frozen on the caller's thread.
            try:
                value = repr(value)
            except Exception:
                value = "<unrepresentable>"
        texts.append((name, value))
    return texts


def _unrenderable(record: logging.LogRecord) -> str:
    """The message when `msg % args` fails. logging would print msg and args unscrubbed to
    stderr; this keeps them in the record, to be scrubbed like any other message."""
    try:
        return f"<log message could not be rendered> {record.msg!s} {record.args!r}"
    except Exception:
        return "<log message could not be rendered>"


def _notice(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(LOGGER_NAME, level, __file__, 0, message, None, None, "_report")


def _build_scrubber(model: str | None, config: ScrubConfig | None) -> Scrubber:
    """A Scrubber for `model`; without a config, one per model is shared per process.

    The engine is imported here, on the first record to scrub, not with this module: it
    loads Presidio and spaCy, and the processes that install the handler at start-up (every
    web worker, Celery child and `flask` command) should not pay for them until a record
    needs scrubbing.
    """
    from privacy.scrubber.engine import Scrubber  # the light start: see the docstring

    if config is not None:
        return Scrubber(model=model, config=config)
    with _shared_lock:
        if model not in _shared:
            _shared[model] = Scrubber(model=model)
        return _shared[model]


def _flush_all() -> None:
    # Registered after logging's own shutdown hook, so it runs first (atexit is LIFO):
    # queued records reach the targets before logging closes them.
    for handler in list(_live):
        handler.flush(timeout=5.0)


def _after_fork_in_child() -> None:
    global _shared_lock
    _shared_lock = threading.Lock()  # a parent's drain thread may have held it mid-build
    for handler in list(_live):
        handler._reset()


atexit.register(_flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
