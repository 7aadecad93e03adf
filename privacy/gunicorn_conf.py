"""gunicorn settings: `gunicorn --config python:privacy.gunicorn_conf wsgi:app`."""

import os

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
