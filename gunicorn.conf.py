"""gunicorn settings. gunicorn reads ./gunicorn.conf.py by default, so `gunicorn wsgi:app` run in
the project folder uses this file; the Procfile names it: `gunicorn --config gunicorn.conf.py`."""

import json
import logging
import os
import re
import traceback
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from gunicorn import util as gunicorn_util
from gunicorn.glogging import Logger

_INVALID_REQUEST = re.compile(r"Invalid request from ip=\S*?: (?P<error>[^:'\"(]*)")


def _without_query(value):
    """A request target (`/path?query`, `http://host/path?query`) without query or fragment;
    anything else unchanged."""
    if not isinstance(value, str) or not value.startswith(("/", "http://", "https://")):
        return value
    if "?" not in value and "#" not in value:
        return value
    parts = urlsplit(value)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class PrivateLogFilter(logging.Filter):
    """gunicorn's own error log without personal data.

    When a request fails after the app returned (a streamed body that raises), gunicorn
    logs "Error handling request <target>" with the query string, which may carry tokens or
    e-mail addresses, and the exception's message, which may carry input: the path alone
    and the exception's type and frames are kept. A request gunicorn refuses is logged
    with the client's address and the offending line or header: only the reason is kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_without_query(arg) for arg in record.args)
        if isinstance(record.msg, str):
            invalid = _INVALID_REQUEST.match(record.msg)
            if invalid:
                record.msg = f"Invalid request refused: {invalid['error'].strip()}"
                record.args = ()
        if record.exc_info and record.exc_info[0] is not None:
            kind, _error, frames = record.exc_info
            record.exc_text = "Traceback (most recent call last):\n{}{}".format(
                "".join(traceback.format_tb(frames)), kind.__name__
            )
            record.exc_info = None
        return True


class PrivateLogger(Logger):
    """gunicorn's logger with PrivateLogFilter on its error log (text or JSON alike)."""

    def setup(self, cfg):
        super().setup(cfg)
        if not any(isinstance(f, PrivateLogFilter) for f in self.error_log.filters):
            self.error_log.addFilter(PrivateLogFilter())


# What gunicorn itself answers when it refuses a request before the app sees it (a request
# line or header too long or malformed): the app's one error shape, as JSON, and never the
# request's own text, which gunicorn's HTML page would echo.
GUNICORN_REFUSALS = {
    400: "The request could not be read: its request line, a header or the proxy line is "
    "malformed or too long.",
    403: "This request is refused.",
    431: "The request's headers are too large.",
    500: "Something went wrong on our side.",
    501: "This method or transfer encoding is not supported.",
}


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn.util.write_error, answering in the app's JSON error shape."""
    payload = {
        "code": status_int,
        "status": reason,
        "message": GUNICORN_REFUSALS.get(status_int, GUNICORN_REFUSALS[400]),
    }
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn_util.write_nonblock(sock, head.encode("latin-1") + body)


# Set here, in the master before it forks: every worker calls util.write_error at run time.
gunicorn_util.write_error = write_json_error

bind = os.environ.get("PRIVACY_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
if (
    not os.environ.get("PRIVACY_BASE_URL")
    and os.environ.get("PRIVACY_ENV") != "production"
    and not bind.startswith(("unix:", "fd://"))
):
    # Development without `make run` (which sets it for every process): links point at the
    # address served here. Production must set it (the app refuses to start without it).
    host, _, port = bind.rpartition(":")
    host = "127.0.0.1" if host in {"0.0.0.0", "", "[::]"} else host  # noqa: S104 - a test
    os.environ["PRIVACY_BASE_URL"] = f"http://{host}:{port}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread workers keep client connections alive (sync workers close each one).
worker_class = "gthread"
threads = int(os.environ.get("PRIVACY_WEB_THREADS", "4"))
timeout = 120
# On SIGTERM, requests in flight get this long to finish before the workers are stopped
# (gunicorn's default is 30 s; `make run` and supervisors expect a prompt, clean stop).
graceful_timeout = int(os.environ.get("PRIVACY_GRACEFUL_SECONDS", "8"))
# gunicorn's own access log would print the raw path, query string and client address:
# personal data. The app logs each request itself (route pattern, status, time, request id).
accesslog = None
errorlog = "-"
logger_class = PrivateLogger
# Let the app's logging configuration (text or JSON, request ids) own the root logger.
capture_output = False

if (
    os.environ.get("PRIVACY_LOG_FORMAT")
    or ("json" if os.environ.get("PRIVACY_ENV") == "production" else "text")
) == "json":
    # gunicorn's own messages (start, worker restarts) as JSON lines like the app's.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        # gunicorn's defaults would add this handler to the root logger too, doubling app lines.
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False}
        },
    }
