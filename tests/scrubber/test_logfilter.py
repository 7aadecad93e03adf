"""The logging handler and filter: what reaches the real handlers is scrubbed, the caller's
record is untouched, the caller never waits, and dropped records are reported."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest

from privacy.scrubber import logfilter
from privacy.scrubber.engine import Scrubber

EMAIL = "jan.novak@seznam.cz"
IP = "203.0.113.77"
NAME = "Henrietta Lacks"


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(model=None)


class Collect(logging.Handler):
    """A target that keeps what it receives, formatted, and the thread it ran on."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.threads: set[str] = set()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))
        self.threads.add(threading.current_thread().name)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class SlowScrubber:
    """The real scrubber, `delay` seconds a line slower; can be held on a gate."""

    def __init__(self, real: Scrubber, delay: float = 0.0) -> None:
        self.real, self.delay = real, delay
        self.gate = threading.Event()
        self.gate.set()
        self.threads: set[str] = set()

    def scrub_batch(self, lines, operator):
        lines = list(lines)
        self.threads.add(threading.current_thread().name)
        self.gate.wait(30)
        time.sleep(self.delay * len(lines))
        return self.real.scrub_batch(lines, operator)


@pytest.fixture
def make(scrubber):
    """make(**options) -> (logger, handler, target); everything is closed afterwards."""
    made = []

    def make(*, target=None, name=None, **options):
        target = target or Collect()
        options.setdefault("scrubber", scrubber)
        handler = logfilter.ScrubbingHandler(target, **options)
        # A name never used before: pytest attaches its capture handler to loggers that
        # already exist without propagation, and that handler would format (and so
        # change) the records these tests inspect.
        logger = logging.getLogger(name or f"test.logfilter.{uuid.uuid4().hex}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        made.append((logger, handler))
        return logger, handler, target

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)
        handler.close()


def test_message_and_its_arguments_are_scrubbed_in_what_the_target_receives(make):
    logger, handler, target = make()
    logger.info("login ok for %s from %s", EMAIL, IP)
    logger.info("refund for %(who)s queued", {"who": EMAIL})
    logger.info(f"plain message for {EMAIL}")
    assert handler.flush()
    assert target.lines == [
        f"INFO {logger.name} login ok for [EMAIL_ADDRESS] from [IP_ADDRESS]",
        f"INFO {logger.name} refund for [EMAIL_ADDRESS] queued",
        f"INFO {logger.name} plain message for [EMAIL_ADDRESS]",
    ]
    assert all(r.args is None and r.getMessage() == r.msg for r in target.records)


def test_exception_text_is_scrubbed_and_the_live_exception_is_not_passed_on(make):
    logger, handler, target = make()
    rendered_on = []

    class Recording(logging.Formatter):
        def formatException(self, ei):
            rendered_on.append(threading.current_thread().name)
            return super().formatException(ei)

    handler.setFormatter(Recording())
    try:
        raise ValueError(f"no such address {EMAIL}")
    except ValueError:
        logger.exception("payment declined for %s", NAME)
    assert handler.flush()
    (record,) = target.records
    assert record.exc_info is None  # no formatter can render the unscrubbed exception again
    assert "ValueError: no such address [EMAIL_ADDRESS]" in record.exc_text
    assert target.lines[0].startswith(f"ERROR {logger.name} payment declined for [PERSON]\n")
    assert "Traceback (most recent call last):" in target.text
    assert EMAIL not in target.text and NAME not in target.text
    assert rendered_on == ["privacy.scrubber-drain"]  # not the caller's thread


def test_stack_info_and_extra_values_are_scrubbed(make):
    logger, handler, target = make()

    def where_the_user_is(email):  # the stack shows this line, e-mail included
        logger.info("checkpoint", stack_info=True, extra={"to": email, "n": 3, "d": {"ip": IP}})

    where_the_user_is(EMAIL)
    assert handler.flush()
    (record,) = target.records
    assert "Stack (most recent call last):" in record.stack_info
    assert "where_the_user_is(EMAIL)" in record.stack_info
    assert record.to == "[EMAIL_ADDRESS]"
    assert record.n == 3
    assert record.d == "{'ip': '[IP_ADDRESS]'}"  # other objects arrive as their scrubbed repr


def test_the_callers_record_and_arguments_are_never_changed(make):
    logger, handler, target = make()

    class Customer:
        def __init__(self, email):
            self.email = email

        def __str__(self):
            return f"Customer({self.email})"

    seen = []

    class Keep(logging.Filter):
        def filter(self, record):
            seen.append(record)
            return True

    handler.addFilter(Keep())
    customer, payload = Customer(EMAIL), {"who": EMAIL, "ip": IP}
    logger.info("customer %s", customer)
    logger.info("payload %(who)s %(ip)s", payload)
    try:
        raise KeyError(EMAIL)
    except KeyError:
        logger.error("lookup failed for %s", EMAIL, exc_info=True)
    before = [dict(vars(record)) for record in seen]
    customer.email = "changed.later@example.org"  # the output shows the value at the call
    payload["who"] = "changed.later@example.org"
    assert handler.flush()

    assert [dict(vars(record)) for record in seen] == before
    assert seen[0].args == (customer,) and seen[0].args[0] is customer
    assert seen[1].args is payload and payload == {"who": "changed.later@example.org", "ip": IP}
    assert seen[2].exc_info[0] is KeyError and seen[2].exc_text is None
    assert seen[2].msg == "lookup failed for %s" and seen[2].args == (EMAIL,)
    assert [r.msg for r in target.records] == [
        "customer Customer([EMAIL_ADDRESS])",
        "payload [EMAIL_ADDRESS] [IP_ADDRESS]",
        "lookup failed for [EMAIL_ADDRESS]",
    ]
    assert all(r not in seen for r in target.records)  # the targets get copies


def test_records_keep_their_order_and_are_scrubbed_off_the_callers_thread(make, scrubber):
    slow = SlowScrubber(scrubber)
    logger, handler, target = make(scrubber=slow, batch_size=64)
    for i in range(2000):
        logger.info("event %d for %s", i, EMAIL)
    assert handler.flush()
    assert [r.msg for r in target.records] == [
        f"event {i} for [EMAIL_ADDRESS]" for i in range(2000)
    ]
    assert slow.threads == {"privacy.scrubber-drain"}
    assert target.threads == {"privacy.scrubber-drain"}
    assert handler.stats()["handled"] == 2000 and handler.dropped == 0


def test_concurrent_callers_lose_nothing_and_keep_their_own_order(make):
    logger, handler, target = make(batch_size=16, maxsize=20_000)

    def log(worker):
        for i in range(2000):
            logger.info("worker %d event %d", worker, i)

    threads = [threading.Thread(target=log, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert handler.flush(timeout=60)
    assert handler.dropped == 0
    for worker in range(8):
        mine = [r.msg for r in target.records if r.msg.startswith(f"worker {worker} ")]
        assert mine == [f"worker {worker} event {i}" for i in range(2000)]


def test_a_lone_record_reaches_the_target_without_a_flush(make):
    logger, handler, target = make()
    slowest = 0.0
    for i in range(200):
        started = time.monotonic()
        logger.info("event %d", i)
        while len(target.records) <= i and time.monotonic() - started < 5:
            time.sleep(0.0005)
        slowest = max(slowest, time.monotonic() - started)
    assert len(target.records) == 200
    assert slowest < 2, slowest  # a lost wake-up would wait for the 10 s report interval


def test_target_levels_and_filters_still_apply(make):
    target = Collect(level=logging.WARNING)
    logger, handler, _ = make(target=target)
    logger.info("below the target's level")
    logger.warning("kept")
    assert handler.flush()
    assert [r.msg for r in target.records] == ["kept"]


def test_a_burst_into_a_full_queue_never_blocks_the_caller_and_drops_are_reported(make, scrubber):
    delay, burst = 0.002, 50_000
    slow = SlowScrubber(scrubber, delay=delay)
    logger, handler, target = make(scrubber=slow, maxsize=100, batch_size=32)
    started = time.perf_counter()
    for i in range(burst):
        logger.info("burst %d for %s", i, EMAIL)
    elapsed = time.perf_counter() - started
    # Scrubbing the burst would take burst * delay = 100 s; the caller never waited for it.
    assert elapsed < burst * delay / 10, elapsed
    assert handler.dropped > burst / 2
    handler.close()

    stats = handler.stats()
    messages = [r.getMessage() for r in target.records]
    reports = [r for r in target.records if r.name == "privacy.scrubber"]
    assert stats["handled"] + stats["dropped"] == burst
    assert len(messages) == stats["handled"] + len(reports)
    assert reports and all(r.levelno == logging.WARNING for r in reports)
    assert sum(int(r.msg.split()[2]) for r in reports) == stats["dropped"]
    assert reports[0].msg.startswith("privacy.scrubber: dropped ")
    assert reports[0].msg.endswith(" log records (queue full)")
    assert EMAIL not in "\n".join(messages)


def test_flush_waits_for_every_record_and_gives_up_after_its_timeout(make, scrubber):
    slow = SlowScrubber(scrubber, delay=0.0005)
    logger, handler, target = make(scrubber=slow)
    for i in range(300):
        logger.info("event %d", i)
    assert handler.flush(timeout=30)
    assert len(target.records) == 300 and handler.stats()["queued"] == 0

    slow.gate.clear()
    logger.info("held back")
    assert handler.flush(timeout=0.2) is False
    slow.gate.set()
    assert handler.flush(timeout=30)
    assert target.records[-1].msg == "held back"


def test_close_drains_stops_the_thread_and_later_records_are_scrubbed_synchronously(make):
    logger, handler, target = make()
    thread = handler._thread
    for i in range(100):
        logger.info("event %d for %s", i, EMAIL)
    handler.close()
    assert not thread.is_alive()
    assert len(target.records) == 100
    handler.close()  # twice is harmless

    logger.info("after close for %s", EMAIL)
    assert target.records[-1].msg == "after close for [EMAIL_ADDRESS]"
    assert target.threads == {"privacy.scrubber-drain", threading.current_thread().name}


def test_a_failing_scrubber_drops_the_records_and_says_so_never_passing_them_unscrubbed(make):
    class Broken:
        def scrub_batch(self, lines, operator):
            raise MemoryError

    logger, handler, target = make(scrubber=Broken())
    logger.info("for %s", EMAIL)
    handler.close()
    assert [(r.levelname, r.msg) for r in target.records] == [
        (
            "ERROR",
            "privacy.scrubber: dropped 1 log records that could not be scrubbed (MemoryError)",
        )
    ]
    assert handler.stats()["failed"] == 1


def test_a_scrubber_that_cannot_be_built_is_reported(make):
    logger, handler, target = make(scrubber=None, model="no_such_model_package")
    logger.info("for %s", EMAIL)
    handler.close()
    assert EMAIL not in target.text
    assert "could not build the scrubber" in target.lines[0]
    assert "no_such_model_package" in target.lines[0]
    assert "dropped 1 log records that could not be scrubbed (RuntimeError)" in target.lines[1]


def test_a_message_that_cannot_be_rendered_is_scrubbed_not_printed(make, capsys):
    logger, handler, target = make()
    logger.info("%d records for %s", EMAIL)  # wrong arguments: logging would print them
    assert handler.flush()
    assert target.records[0].msg == (
        "<log message could not be rendered> %d records for %s ('[EMAIL_ADDRESS]',)"
    )
    assert EMAIL not in capsys.readouterr().err


def test_install_wraps_the_loggers_handlers_once(scrubber):
    logger = logging.getLogger("test.logfilter.install")
    logger.propagate = False
    first, second = Collect(), Collect()
    logger.addHandler(first)
    try:
        handler = logfilter.install(logger, scrubber=scrubber)
        assert logger.handlers == [handler] and handler.targets == (first,)
        assert logfilter.install(logger, scrubber=scrubber) is handler
        assert logger.handlers == [handler] and handler.targets == (first,)

        logger.addHandler(second)  # attached later: install again routes it through too
        assert logfilter.install(logger.name, scrubber=scrubber) is handler
        assert logger.handlers == [handler] and handler.targets == (first, second)

        logger.warning("for %s", EMAIL)
        assert handler.flush()
        assert first.lines == second.lines == [f"WARNING {logger.name} for [EMAIL_ADDRESS]"]
    finally:
        for h in list(logger.handlers):
            logger.removeHandler(h)
            h.close()


def test_dictconfig_builds_it_with_inline_and_named_targets():
    stream, named = io.StringIO(), io.StringIO()
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(levelname)s %(message)s"}},
        "handlers": {
            "a_named": {"class": "logging.StreamHandler", "formatter": "plain", "stream": named},
            "scrubbed": {
                "()": "privacy.scrubber.logfilter.scrubbing_handler",
                "handlers": [
                    {"class": "logging.StreamHandler", "formatter": "plain", "stream": stream},
                    "a_named",
                ],
                "model": None,
                "maxsize": 500,
                "operator": "mask",
            },
        },
        "loggers": {
            "test.logfilter.dictconfig": {
                "handlers": ["scrubbed"],
                "level": "INFO",
                "propagate": False,
            }
        },
    }
    logging.config.dictConfig(config)
    logger = logging.getLogger("test.logfilter.dictconfig")
    (handler,) = logger.handlers
    try:
        assert isinstance(handler, logfilter.ScrubbingHandler) and handler.maxsize == 500
        logger.info("sms to %s", "+44 7911 123456")
        assert handler.flush()
        assert stream.getvalue() == named.getvalue() == "INFO sms to ************456\n"
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_dictconfig_explains_a_named_target_built_after_it():
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "scrubbed": {
                "()": "privacy.scrubber.logfilter.scrubbing_handler",
                "handlers": ["z_later"],
                "model": None,
            },
            "z_later": {"class": "logging.NullHandler"},
        },
    }
    with pytest.raises(ValueError, match="scrubbed") as raised:
        logging.config.dictConfig(config)
    assert "sorts after it" in str(raised.value.__cause__)


def test_scrubbing_filter_rewrites_the_record_but_not_the_argument_objects(scrubber):
    payload = {"who": EMAIL}
    try:
        raise ValueError(EMAIL)
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "for %(who)s", (payload,), sys.exc_info()
        )
    assert logfilter.ScrubbingFilter(scrubber=scrubber).filter(record) is True
    assert record.msg == "for [EMAIL_ADDRESS]" and record.args is None
    assert record.exc_info is None and record.exc_text.endswith("ValueError: [EMAIL_ADDRESS]")
    assert payload == {"who": EMAIL}
    assert logging.Formatter().format(record).startswith("for [EMAIL_ADDRESS]\nTraceback")


def test_a_forked_child_drains_its_own_records(make, tmp_path):
    out = tmp_path / "child.log"
    target = logging.FileHandler(out)
    target.setFormatter(logging.Formatter("%(process)d %(message)s"))
    logger, handler, _ = make(target=target)
    logger.info("parent before fork")
    assert handler.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            logger.info("child for %s", EMAIL)
            code = 0 if handler.flush(timeout=20) and handler.stats()["handled"] == 1 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    lines = out.read_text().splitlines()
    assert lines == [f"{os.getpid()} parent before fork", f"{pid} child for [EMAIL_ADDRESS]"]
    target.close()


def test_the_services_own_logs_are_scrubbed_and_keep_the_request_id(app):
    from privacy import logs

    logs.configure_logging("json", "INFO")
    try:
        (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "_privacy", False)]
        assert isinstance(handler, logfilter.ScrubbingHandler)
        (stream,) = handler.targets
        buffer = io.StringIO()
        stream.setStream(buffer)
        with app.test_request_context("/healthz", headers={"X-Request-ID": "req-123"}):
            app.preprocess_request()  # the before-request hooks: the request id is taken
            logging.getLogger("privacy.test").warning("mail to %s bounced", EMAIL)
        assert handler.flush()
        (line,) = [json.loads(x) for x in buffer.getvalue().splitlines()]
        assert line["message"] == "mail to [EMAIL_ADDRESS] bounced"
        assert line["request_id"] == "req-123"
        assert line["logger"] == "privacy.test"
    finally:
        logs.configure_logging(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])


def test_logfilter_imports_neither_flask_nor_the_database():
    code = (
        "import sys, privacy.scrubber.logfilter; "
        "print(sorted(m for m in ('flask', 'sqlalchemy', 'werkzeug') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
