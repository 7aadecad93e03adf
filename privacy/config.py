"""Configuration: embedded defaults, PRIVACY_* environment variables, production checks."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from privacy import files
from privacy.scrubber.relay import Target

# Every setting the service reads from the environment, with its default and meaning.
# The README's configuration table lists each of these; a test keeps the two in step.
SETTINGS: list[tuple[str, str, str]] = [
    (
        "PRIVACY_ENV",
        "development",
        "`development` or `production` (production refuses unsafe settings)",
    ),
    (
        "PRIVACY_INSTANCE_PATH",
        "`instance/`",
        "folder for the embedded database, secrets, outbox, files and broker",
    ),
    (
        "PRIVACY_DATABASE_URL",
        "`sqlite:///instance/privacy.sqlite3`",
        "SQLAlchemy URL, e.g. `postgresql+psycopg://user@host/db`",
    ),
    (
        "PRIVACY_BROKER_URL",
        "embedded (`filesystem://` under `instance/broker/`)",
        "Celery broker, e.g. `redis://127.0.0.1:6379/0`",
    ),
    (
        "PRIVACY_STORAGE_URL",
        "`file://instance/storage`",
        "object storage: `file:///path` or `s3://bucket/prefix`",
    ),
    ("PRIVACY_S3_ENDPOINT_URL", "(AWS)", "S3-compatible endpoint, e.g. `http://127.0.0.1:9000`"),
    ("PRIVACY_S3_REGION", "`eu-central-1`", "S3 region"),
    ("PRIVACY_S3_SSE", "`AES256`", "server-side encryption: `AES256` or `aws:kms`"),
    ("PRIVACY_S3_KMS_KEY_ID", "(none)", "KMS key id when `PRIVACY_S3_SSE=aws:kms`"),
    (
        "PRIVACY_SMTP_URL",
        "(none: outbox folder)",
        "`smtp://user:pass@host:587?starttls=1` or `smtps://host:465`",
    ),
    ("PRIVACY_MAIL_FROM", "`privacy@localhost`", "sender address of outgoing mail"),
    ("PRIVACY_OUTBOX_PATH", "`instance/outbox`", "where mail goes when no SMTP URL is set"),
    (
        "PRIVACY_SECRET_KEY",
        "generated into `instance/secrets.json`",
        "signs sessions and links; required in production",
    ),
    (
        "PRIVACY_DATA_KEYS",
        "generated into `instance/secrets.json`",
        "AES-256 key ring `id:base64key,...`; the last is used for new data",
    ),
    (
        "PRIVACY_INDEX_KEY",
        "generated into `instance/secrets.json`",
        "base64 HMAC key of the e-mail blind index; never rotate without a re-index",
    ),
    (
        "PRIVACY_FORCE_HTTPS",
        "`false` (`true` required in production)",
        "redirect HTTP to HTTPS, send HSTS, secure cookies",
    ),
    ("PRIVACY_PROXY_HOPS", "`0`", "number of trusted reverse proxies setting `X-Forwarded-*`"),
    ("PRIVACY_MAX_BODY_BYTES", "`1048576`", "largest accepted request body (413 above)"),
    ("PRIVACY_MAX_IMPORT_BYTES", "`67108864`", "largest accepted bulk-import upload (413 above)"),
    ("PRIVACY_MAX_IMPORT_ROWS", "`100000`", "most rows in one bulk import (413 above)"),
    (
        "PRIVACY_SCRUB_MAX_BODY_BYTES",
        "`16777216`",
        "largest accepted body of `/api/v1/scrub` requests (413 above)",
    ),
    (
        "PRIVACY_SCRUB_BUDGET_SECONDS",
        "`2`",
        "time one `/api/v1/scrub` request may spend scrubbing (each 512-line chunk of a "
        "stream); lines not finished in it come back as `<UNSCRUBBED>` and are listed",
    ),
    (
        "PRIVACY_SCRUB_ACCOUNT_CONCURRENCY",
        "`1`",
        "scrub requests one account may have in progress per web process (429 with "
        "`Retry-After` above)",
    ),
    (
        "PRIVACY_SCRUB_PROCESS_CONCURRENCY",
        "half of `PRIVACY_WEB_THREADS` (at least 1)",
        "scrub requests in progress per web process, all accounts together (503 with "
        "`Retry-After` above); below `PRIVACY_WEB_THREADS`, so other requests always find a "
        "thread",
    ),
    (
        "PRIVACY_SCRUB_RELAY_URL",
        "unset (relay off)",
        "`tcp://host:port` or `udp://host:port` receiving the lines scrubbed by "
        "`/api/v1/scrub/relay` (docs/syslog.md)",
    ),
    (
        "PRIVACY_BASE_URL",
        "set by `make run` to `http://127.0.0.1:$PORT`; gunicorn alone: its bind address",
        "the service's public address, the one base of every link in e-mails, callbacks, feeds "
        "and documents; the worker and the `flask` commands that send links refuse to run "
        "without it, and production requires an `https://` one",
    ),
    ("PRIVACY_SESSION_IDLE_MINUTES", "`30`", "a browser session ends after this much inactivity"),
    ("PRIVACY_SESSION_MAX_HOURS", "`12`", "a browser session ends this long after sign-in"),
    ("PRIVACY_SIGNIN_LINK_MINUTES", "`15`", "life of an e-mailed sign-in link (single use)"),
    ("PRIVACY_INVITATION_DAYS", "`7`", "life of an invitation to join an account"),
    (
        "PRIVACY_RATELIMIT_STORAGE_URL",
        "`memory://` (production: `PRIVACY_BROKER_URL`)",
        "where rate-limit counters live; `redis://...` to share them between processes",
    ),
    (
        "PRIVACY_SIGNIN_RATE_LIMIT",
        "`5 per 15 minutes`",
        "sign-in e-mails per address (and ten times that per client address)",
    ),
    (
        "PRIVACY_REQUEST_RATE_LIMIT",
        "`5 per hour`",
        "public request-form submissions per e-mail address (and ten times that per client "
        "address)",
    ),
    (
        "PRIVACY_MAIL_RECIPIENT_RATE_LIMIT",
        "`5 per hour`",
        "invitations (and resends), and request-form confirmation links, to one address",
    ),
    (
        "PRIVACY_MAIL_ACCOUNT_RATE_LIMIT",
        "`100 per hour`",
        "invitations (and resends), and request-form confirmation links, of one account",
    ),
    (
        "PRIVACY_OIDC_ISSUER",
        "`https://accounts.google.com`",
        "OpenID Connect issuer of Google sign-in (its `/.well-known/openid-configuration`)",
    ),
    ("PRIVACY_OIDC_CLIENT_ID", "unset (Google sign-in off)", "OAuth client id"),
    ("PRIVACY_OIDC_CLIENT_SECRET", "unset", "OAuth client secret"),
    (
        "PRIVACY_OPENDSR_KEY_FILE",
        "generated into `instance/opendsr/` (required in production)",
        "PEM RSA key that signs OpenDSR answers and callbacks",
    ),
    (
        "PRIVACY_OPENDSR_CERT_FILE",
        "a self-signed certificate beside the generated key (required in production)",
        "PEM certificate of that key, published at `/opendsr/v1/certificate`",
    ),
    (
        "PRIVACY_SUBPROCESSOR_NOTICE_DAYS",
        "`30`",
        "notice period before a new sub-processor is effective for an account",
    ),
    (
        "PRIVACY_PROCESSOR_NAME",
        "`Privacy service`",
        "the platform's legal name as processor in the DPA annex and the Art. 30(2) record",
    ),
    (
        "PRIVACY_PROCESSOR_CONTACT",
        "`PRIVACY_MAIL_FROM`",
        "the processor's contact (postal address, privacy or DPO e-mail) in those documents",
    ),
    ("PRIVACY_RESULTS_DAYS", "`7`", "life of the download link of an access package or receipt"),
    (
        "PRIVACY_BACKUP_URL",
        "`file://instance/backups`",
        "where backups go: `file:///path` or `s3://bucket/prefix`, apart from the data objects",
    ),
    (
        "PRIVACY_BACKUP_KEYS",
        "generated into `instance/backup-keys` (required in production)",
        "backup key ring `id:base64key,...`; the last one wraps new backups' data keys",
    ),
    ("PRIVACY_BACKUP_HOUR", "`2`", "UTC hour of the daily backup"),
    (
        "PRIVACY_BIND",
        "`127.0.0.1:$PORT` (`PORT` defaults to 8000)",
        "address gunicorn listens on, e.g. `0.0.0.0:8000`",
    ),
    (
        "PRIVACY_WEB_THREADS",
        "`4`",
        "threads per gunicorn worker (`WEB_CONCURRENCY` sets workers, default 2)",
    ),
    (
        "PRIVACY_GRACEFUL_SECONDS",
        "`8`",
        "on SIGTERM, how long gunicorn lets requests in flight finish before its workers stop",
    ),
    ("PRIVACY_LOG_FORMAT", "`text` (`json` in production)", "`text` or `json`"),
    ("PRIVACY_LOG_LEVEL", "`INFO`", "log level of the service's own logs"),
]


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says what to change."""


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from exc


def _scrub_limits() -> dict:
    """The scrubber's time budget and concurrency limits (see SETTINGS)."""
    raw = os.environ.get("PRIVACY_SCRUB_BUDGET_SECONDS") or "2"
    try:
        budget = float(raw)
    except ValueError:
        budget = -1.0
    if not 0 < budget <= 600:
        raise ConfigError(f"PRIVACY_SCRUB_BUDGET_SECONDS must be seconds in (0, 600], got {raw!r}")
    threads = _env_int("PRIVACY_WEB_THREADS", 4)
    per_process = _env_int("PRIVACY_SCRUB_PROCESS_CONCURRENCY", max(1, threads // 2))
    per_account = _env_int("PRIVACY_SCRUB_ACCOUNT_CONCURRENCY", 1)
    if per_process < 1 or per_account < 1:
        raise ConfigError(
            "PRIVACY_SCRUB_PROCESS_CONCURRENCY and PRIVACY_SCRUB_ACCOUNT_CONCURRENCY must be "
            "at least 1"
        )
    if threads > 1 and per_process >= threads:
        raise ConfigError(
            "PRIVACY_SCRUB_PROCESS_CONCURRENCY must be below PRIVACY_WEB_THREADS, so that "
            "scrub requests never hold every thread"
        )
    return {
        "SCRUB_BUDGET_SECONDS": budget,
        "SCRUB_ACCOUNT_CONCURRENCY": per_account,
        "SCRUB_PROCESS_CONCURRENCY": per_process,
    }


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _embedded_secrets(instance: Path) -> dict[str, str]:
    """Read instance/secrets.json, creating it (mode 0600) on first use."""
    path = instance / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    generated = {
        "PRIVACY_SECRET_KEY": secrets.token_urlsafe(48),
        "PRIVACY_DATA_KEYS": f"k{secrets.token_hex(3)}:{_new_key()}",
        "PRIVACY_INDEX_KEY": _new_key(),
    }
    files.private_dirs(instance)
    tmp = path.with_suffix(".tmp")
    with files.open_private(tmp, "w") as fh:
        json.dump(generated, fh, indent=2)
    try:
        # link() fails if another process won the race; then its secrets are the ones to use.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return json.loads(path.read_text())


def _embedded_backup_keys(instance: Path) -> str:
    """instance/backup-keys (mode 0600), created on first use: the embedded default's backup
    key ring. Keep a copy elsewhere: without it no backup can be restored."""
    path = instance / "backup-keys"
    if not path.exists():
        files.private_dirs(instance)
        tmp = instance / f"backup-keys.{os.getpid()}.tmp"
        with files.open_private(tmp, "w") as fh:
            fh.write(f"b{secrets.token_hex(3)}:{_new_key()}\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def load(root: Path) -> dict:
    """Build the Flask config mapping from the environment, filling embedded defaults."""
    env = os.environ.get("PRIVACY_ENV", "development").strip().lower()
    if env not in {"development", "production"}:
        raise ConfigError(f"PRIVACY_ENV must be 'development' or 'production', got {env!r}")
    production = env == "production"
    instance = Path(os.environ.get("PRIVACY_INSTANCE_PATH") or root / "instance").resolve()

    explicit = {
        name: os.environ[name]
        for name in ("PRIVACY_SECRET_KEY", "PRIVACY_DATA_KEYS", "PRIVACY_INDEX_KEY")
        if os.environ.get(name)
    }
    if production:
        missing = sorted(
            {"PRIVACY_SECRET_KEY", "PRIVACY_DATA_KEYS", "PRIVACY_INDEX_KEY"} - set(explicit)
        )
        if missing:
            raise ConfigError(
                "PRIVACY_ENV=production needs explicit secrets; set " + ", ".join(missing)
            )
        keys = explicit
    else:
        keys = {**_embedded_secrets(instance), **explicit}

    database_url = (
        os.environ.get("PRIVACY_DATABASE_URL") or f"sqlite:///{instance / 'privacy.sqlite3'}"
    )
    broker_url = os.environ.get("PRIVACY_BROKER_URL") or "filesystem://localhost/"
    storage_url = os.environ.get("PRIVACY_STORAGE_URL") or f"file://{instance / 'storage'}"
    force_https = _env_bool("PRIVACY_FORCE_HTTPS", False)
    relay_url = os.environ.get("PRIVACY_SCRUB_RELAY_URL") or None
    if relay_url:
        try:
            Target.parse(relay_url)
        except ValueError as exc:
            raise ConfigError(f"PRIVACY_SCRUB_RELAY_URL: {exc}") from exc

    if production:
        if database_url.startswith("sqlite"):
            raise ConfigError(
                "PRIVACY_ENV=production refuses SQLite; set PRIVACY_DATABASE_URL to PostgreSQL"
            )
        if broker_url.startswith("filesystem"):
            raise ConfigError(
                "PRIVACY_ENV=production refuses the embedded broker; "
                "set PRIVACY_BROKER_URL to Redis"
            )
        if not force_https:
            raise ConfigError("PRIVACY_ENV=production needs PRIVACY_FORCE_HTTPS=true")
        if not (
            os.environ.get("PRIVACY_OPENDSR_KEY_FILE")
            and os.environ.get("PRIVACY_OPENDSR_CERT_FILE")
        ):
            raise ConfigError(
                "PRIVACY_ENV=production needs PRIVACY_OPENDSR_KEY_FILE and "
                "PRIVACY_OPENDSR_CERT_FILE (the certificate OpenDSR controllers verify)"
            )
        if not os.environ.get("PRIVACY_BACKUP_KEYS") or not os.environ.get("PRIVACY_BACKUP_URL"):
            raise ConfigError(
                "PRIVACY_ENV=production needs PRIVACY_BACKUP_KEYS and PRIVACY_BACKUP_URL "
                "(a backup location apart from the data objects)"
            )
        if os.environ.get("PRIVACY_BACKUP_URL") == os.environ.get("PRIVACY_STORAGE_URL"):
            raise ConfigError("PRIVACY_BACKUP_URL must differ from PRIVACY_STORAGE_URL")
        if not (os.environ.get("PRIVACY_BASE_URL") or "").startswith("https://"):
            raise ConfigError(
                "PRIVACY_ENV=production needs PRIVACY_BASE_URL, the service's https:// address "
                "used in e-mailed links"
            )

    broker_folder = instance / "broker" / "queue"
    celery: dict = {
        "broker_url": broker_url,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        # Each pool process has its next tasks at hand: an erasure takes milliseconds, and
        # fetching one message at a time left processes idle between tasks (on the embedded
        # broker up to its polling interval). A killed worker's reserved messages come back
        # on Redis after the visibility timeout; open requests are re-queued by dsr.resume.
        "worker_prefetch_multiplier": 8,
        "broker_connection_retry_on_startup": True,
        "timezone": "UTC",
        "beat_schedule_filename": str(instance / "celerybeat-schedule"),
        # Keep the service's own log handler (text or JSON, request ids) in the worker too.
        "worker_hijack_root_logger": False,
    }
    if broker_url.startswith("filesystem"):
        # kombu's filesystem transport, but a message file appears only once it is whole.
        celery["broker_transport"] = "privacy.broker:Transport"
        # One folder for both directions: producers and the worker share the queue.
        celery["broker_transport_options"] = {
            "data_folder_in": str(broker_folder),
            "data_folder_out": str(broker_folder),
            "processed_folder": str(instance / "broker" / "processed"),
            "control_folder": str(instance / "broker" / "control"),
            "store_processed": False,
            # How long the worker sleeps when it finds nothing to do (kombu's default is 1 s).
            "polling_interval": 0.05,
        }

    return {
        "ENV_NAME": env,
        "PRODUCTION": production,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": keys["PRIVACY_SECRET_KEY"],
        "DATA_KEYS": keys["PRIVACY_DATA_KEYS"],
        "INDEX_KEY": keys["PRIVACY_INDEX_KEY"],
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {
            # No pre-ping: it costs a round trip on every request; a connection the server
            # dropped fails one request, is discarded, and the pool reconnects.
            "pool_recycle": 1800,
            "hide_parameters": True,
        },
        "CELERY": celery,
        "BROKER_FOLDER": str(broker_folder),
        "STORAGE_URL": storage_url,
        "S3_ENDPOINT_URL": os.environ.get("PRIVACY_S3_ENDPOINT_URL") or None,
        "S3_REGION": os.environ.get("PRIVACY_S3_REGION") or "eu-central-1",
        "S3_SSE": os.environ.get("PRIVACY_S3_SSE") or "AES256",
        "S3_KMS_KEY_ID": os.environ.get("PRIVACY_S3_KMS_KEY_ID") or None,
        "SMTP_URL": os.environ.get("PRIVACY_SMTP_URL") or None,
        "MAIL_FROM": os.environ.get("PRIVACY_MAIL_FROM") or "privacy@localhost",
        "OUTBOX_PATH": os.environ.get("PRIVACY_OUTBOX_PATH") or str(instance / "outbox"),
        "FORCE_HTTPS": force_https,
        "PROXY_HOPS": _env_int("PRIVACY_PROXY_HOPS", 0),
        "MAX_CONTENT_LENGTH": _env_int("PRIVACY_MAX_BODY_BYTES", 1024 * 1024),
        "MAX_IMPORT_BYTES": _env_int("PRIVACY_MAX_IMPORT_BYTES", 64 * 1024 * 1024),
        "MAX_IMPORT_ROWS": _env_int("PRIVACY_MAX_IMPORT_ROWS", 100_000),
        "SCRUB_MAX_BODY_BYTES": _env_int("PRIVACY_SCRUB_MAX_BODY_BYTES", 16 * 1024 * 1024),
        "SCRUB_RELAY_URL": relay_url,
        **_scrub_limits(),
        "LOG_FORMAT": os.environ.get("PRIVACY_LOG_FORMAT") or ("json" if production else "text"),
        "LOG_LEVEL": (os.environ.get("PRIVACY_LOG_LEVEL") or "INFO").upper(),
        # No default from this process's PORT: honcho gives the worker another one, and a
        # `flask` command has none. privacy.links says which setting to give when it is unset.
        "BASE_URL": (os.environ.get("PRIVACY_BASE_URL") or "").rstrip("/") or None,
        "SESSION_IDLE_MINUTES": _env_int("PRIVACY_SESSION_IDLE_MINUTES", 30),
        "SESSION_MAX_HOURS": _env_int("PRIVACY_SESSION_MAX_HOURS", 12),
        "SIGNIN_LINK_MINUTES": _env_int("PRIVACY_SIGNIN_LINK_MINUTES", 15),
        "INVITATION_DAYS": _env_int("PRIVACY_INVITATION_DAYS", 7),
        "RATELIMIT_STORAGE_URI": os.environ.get("PRIVACY_RATELIMIT_STORAGE_URL")
        or (broker_url if production else "memory://"),
        "SIGNIN_RATE_LIMIT": os.environ.get("PRIVACY_SIGNIN_RATE_LIMIT") or "5 per 15 minutes",
        "REQUEST_RATE_LIMIT": os.environ.get("PRIVACY_REQUEST_RATE_LIMIT") or "5 per hour",
        "MAIL_RECIPIENT_RATE_LIMIT": os.environ.get("PRIVACY_MAIL_RECIPIENT_RATE_LIMIT")
        or "5 per hour",
        "MAIL_ACCOUNT_RATE_LIMIT": os.environ.get("PRIVACY_MAIL_ACCOUNT_RATE_LIMIT")
        or "100 per hour",
        "OIDC_ISSUER": (
            os.environ.get("PRIVACY_OIDC_ISSUER") or "https://accounts.google.com"
        ).rstrip("/"),
        "OPENDSR_KEY_FILE": os.environ.get("PRIVACY_OPENDSR_KEY_FILE") or None,
        "OPENDSR_CERT_FILE": os.environ.get("PRIVACY_OPENDSR_CERT_FILE") or None,
        "RESULTS_DAYS": _env_int("PRIVACY_RESULTS_DAYS", 7),
        "SUBPROCESSOR_NOTICE_DAYS": _env_int("PRIVACY_SUBPROCESSOR_NOTICE_DAYS", 30),
        "PROCESSOR_NAME": os.environ.get("PRIVACY_PROCESSOR_NAME") or "Privacy service",
        "PROCESSOR_CONTACT": os.environ.get("PRIVACY_PROCESSOR_CONTACT") or None,
        "BACKUP_URL": os.environ.get("PRIVACY_BACKUP_URL") or f"file://{instance / 'backups'}",
        "BACKUP_KEYS": os.environ.get("PRIVACY_BACKUP_KEYS")
        or (None if production else _embedded_backup_keys(instance)),
        "BACKUP_HOUR": _env_int("PRIVACY_BACKUP_HOUR", 2),
        "OIDC_CLIENT_ID": os.environ.get("PRIVACY_OIDC_CLIENT_ID") or None,
        "OIDC_CLIENT_SECRET": os.environ.get("PRIVACY_OIDC_CLIENT_SECRET") or None,
        "SESSION_COOKIE_NAME": "privacy_session",
        "SESSION_COOKIE_SECURE": force_https,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "API_TITLE": "Privacy service API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": "/api/docs/assets/",
    }


def check_production(config: dict) -> None:
    """Re-check a fully assembled config (after overrides) for production safety."""
    if not config.get("PRODUCTION"):
        return
    if str(config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite"):
        raise ConfigError("PRIVACY_ENV=production refuses SQLite; set PRIVACY_DATABASE_URL")
    if not config.get("FORCE_HTTPS"):
        raise ConfigError("PRIVACY_ENV=production needs PRIVACY_FORCE_HTTPS=true")
