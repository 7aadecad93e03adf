"""The service's own logs: request ids, text or JSON lines, and never personal data."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import Flask
from flask import g
from flask import request
from pythonjsonlogger.json import JsonFormatter

from privacy.scrubber import logfilter

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_logger = logging.getLogger("privacy.access")
# The id of the HTTP request being served (None outside one). Owned here: set when a request
# begins, reset when it ends; the audit log, error reports and log records read it through
# `request_id()`, so none of them needs Flask's request context.
_request_id: ContextVar[str | None] = ContextVar("privacy_request_id", default=None)


def request_id() -> str | None:
    """The current HTTP request's id, or None (a task, a command, a thread of our own)."""
    return _request_id.get()


@contextmanager
def bound_request_id(value: str | None) -> Iterator[None]:
    """Run a block under request id `value`: for work a request hands on past its own end,
    such as a streamed body whose last chunk is written after the view returned."""
    token = _request_id.set(value)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Stamp every record with the current request id ('-' outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get() or "-"
        return True


def configure_logging(fmt: str, level: str) -> None:
    """Install one handler on the root logger; idempotent across app factories.

    Records go through the scrubber's ScrubbingHandler to stderr: the safety net for a
    name or an e-mail that slips into a message. It scans without NER (`model=None`): our
    messages are meant to hold ids only, the structural recognizers catch e-mails, phones,
    IPs, cards, IBANs and keyed names, and the net keeps up with bursts at a fraction of
    the memory and time a spaCy pipeline costs per process. Nothing of the scrubber's engine
    is imported here: the handler builds it with its first record, and Presidio (with spaCy)
    is imported only for a line that has something to replace.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_privacy", False):
            root.removeHandler(handler)
            handler.close()  # drains its queue and stops its thread
    stream = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        stream.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        stream.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    stream.addFilter(RequestIdFilter())  # '-' on the scrubber's own drop reports
    handler = logfilter.ScrubbingHandler(stream, model=None)
    # Stamped on the caller's thread, where the request context is; the stream handler runs
    # on the drain thread.
    handler.addFilter(RequestIdFilter())
    handler._privacy = True
    root.addHandler(handler)
    root.setLevel(level)


def init_request_ids(app: Flask) -> None:
    """Take a well-formed X-Request-ID from the caller or make one; echo it on the response."""

    @app.before_request
    def assign_request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex
        g.request_id_token = _request_id.set(g.request_id)
        g.request_started = time.perf_counter()

    @app.teardown_request
    def forget_request_id(_error=None):
        token = g.pop("request_id_token", None)
        if token is not None:
            try:
                _request_id.reset(token)
            except ValueError:  # set in another context (a copied one): clear it here
                _request_id.set(None)

    @app.after_request
    def echo_request_id(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers["X-Request-ID"] = request_id
            # The route pattern and its UUID arguments, never the raw path, query string or
            # client address: a caller can put an e-mail in any of them.
            rule = request.url_rule.rule if request.url_rule else "<unmatched>"
            ids = [str(v) for v in (request.view_args or {}).values() if isinstance(v, uuid.UUID)]
            access_logger.info(
                "%s %s %s %.1fms%s",
                request.method,
                rule,
                response.status_code,
                (time.perf_counter() - g.request_started) * 1000,
                (" ids=" + ",".join(ids)) if ids else "",
            )
        return response
