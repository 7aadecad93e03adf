"""gunicorn settings: `gunicorn --config python:privacy.gunicorn_conf wsgi:app`."""

import os

bind = os.environ.get("PRIVACY_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread workers keep client connections alive (sync workers close each one).
worker_class = "gthread"
threads = int(os.environ.get("PRIVACY_WEB_THREADS", "4"))
timeout = 120
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
