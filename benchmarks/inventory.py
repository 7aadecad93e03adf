"""Inventory benchmark: bulk import of N subjects and e-mail lookup latency over real HTTP.

Runs the service as production does (migrations, `flask accounts create`, gunicorn with
gunicorn.conf.py) against a throw-away instance folder and, for PostgreSQL, a throw-away
database, then prints figures. Targets come from the issue: import >= 5,000 subjects/s and
lookup p99 <= 10 ms. A missed target is printed as MISSED; only errors give a non-zero exit.

While the import runs, another account creates subjects one after the other over its own
connection: how long each of those writes took, and whether any failed, shows how long the
import held the database (on SQLite, its one write lock) at a time.

    .venv/bin/python benchmarks/inventory.py                      # SQLite, then PostgreSQL
    .venv/bin/python benchmarks/inventory.py --database sqlite --rows 20000
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import http.client
import importlib.util
import io
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from privacy.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
APP_SETTINGS = {name for name, _default, _meaning in SETTINGS}
BIN = ROOT / ".venv" / "bin"
IMPORT_TARGET = 5_000.0  # subjects per second
LOOKUP_P99_TARGET = 10.0  # milliseconds
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
GUNICORN_TIMEOUT = 120  # gunicorn.conf.py; a longer import request is killed

FIRST_NAMES = (
    "Anna, Lukas, Zoë, Jürgen, Małgorzata, Łukasz, José, María, François, Chloé, Søren,"
    " Åsa, Björn, Ingrid, Siobhán, Seán, Jiří, Tomáš, Ľubica, Αλέξανδρος, Ελένη, Дмитрий,"
    " Мария, Olena, Ayşe, Mehmet, Nguyễn, Yuki, Hiroshi, 伟, 芳, Fatima, Ahmed, Priya, Arjun,"
    " Émile, Noémie, Grzegorz, Oğuz, Þórunn, Jan, Sophie, Marco, Giulia, Liam, Emma, Noah,"
    " Mia"
).split(", ")
LAST_NAMES = (
    "Müller, Schmidt, Schneider, Fischer, Weiß, Nowak, Kowalski, Wiśniewska, García,"
    " Fernández, Martínez, Dubois, Lefèvre, Rossi, Bianchi, Jensen, Ødegård, Lindqvist,"
    " Andersson, O'Brien, Ní Bhriain, Novák, Dvořáková, Παπαδόπουλος, Иванова, Шевченко,"
    " Yılmaz, Öztürk, Trần, Tanaka, Suzuki, 王, 张, Khan, Haddad, Patel, Sharma, de la Cruz,"
    " van der Berg, Smith, Jones, Brown, Taylor, Wilson, Kim, Park, Gonçalves,"
    " Guðmundsdóttir"
).split(", ")
DOMAINS = (
    "example.com, example.org, example.net, mail.example.de, post.example.fr,"
    " example.co.uk, kunden.example.at, example.pl, example.es, example.it"
).split(", ")
SOURCES = ("webshop", "newsletter", "crm-sync", "support", "events")
SYSTEMS = (
    {"name": "CRM", "kind": "crm", "region": "eu"},
    {"name": "Newsletter", "kind": "email_provider", "region": "eu"},
    {"name": "Support desk", "kind": "support", "region": "us"},
)
ACCESS_LINE = re.compile(
    r"privacy\.access \[[^\]]*\] POST /api/v1/subjects/lookup (\d{3}) "
    r"([0-9.]+)ms"
)


class BenchmarkError(RuntimeError):
    """The run cannot continue; the message says which step failed."""


@dataclass
class Result:
    database: str
    server: str = ""
    rows: int = 0
    upload_mb: float = 0.0
    import_seconds: float = 0.0
    lookups: int = 0
    misses: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    reconnects: int = 0
    # The other account's writes during the import: (HTTP status, milliseconds) each.
    other_writes: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.rows / self.import_seconds if self.import_seconds else 0.0


# Data -------------------------------------------------------------------------------------


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", folded.lower())


def make_csv(rows: int, rng: random.Random) -> tuple[bytes, list[str]]:
    """A CSV upload of `rows` subjects with unique e-mails; returns (body, normalized e-mails)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["name", "email", "external_ref", "source", "systems"])
    emails = []
    for number in range(rows):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        # Non-Latin names have no ASCII spelling: fall back to a generic local part.
        local = ".".join(p for p in (_ascii_slug(first), _ascii_slug(last)) if p) or "user"
        email = f"{local}.{number}@{rng.choice(DOMAINS)}"
        emails.append(email)
        if number % 7 == 0:
            email = email.capitalize()  # the service lower-cases; lookups use the lower form
        held = rng.sample([s["name"] for s in SYSTEMS], k=rng.choice((0, 1, 1, 2, 3)))
        writer.writerow(
            [
                f"{first} {last}",
                email,
                f"cust-{number:07d}" if rng.random() < 0.8 else "",
                rng.choice(SOURCES),
                ";".join(held),
            ]
        )
    return buffer.getvalue().encode(), emails


# Processes and HTTP -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(args: list[str], env: dict[str, str], step: str) -> str:
    """Run a `flask --app wsgi ...` command; return stdout, raise BenchmarkError on failure."""
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise BenchmarkError(f"{step} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


class Api:
    """A keep-alive http.client connection to the server with the bearer token."""

    def __init__(self, port: int, token: str | None = None, timeout: float = 30):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.reconnects = 0

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = content_type
        if self.connection.sock is None:
            self.reconnects += 1
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def json(self, method: str, path: str, payload: dict | None = None, expect: int = 200) -> dict:
        body = json.dumps(payload).encode() if payload is not None else None
        status, raw = self.request(method, path, body)
        if status != expect:
            raise BenchmarkError(
                f"{method} {path} answered {status}, expected {expect}: "
                f"{raw[:500].decode(errors='replace')}"
            )
        return json.loads(raw) if raw else {}

    def close(self) -> None:
        self.connection.close()


def start_gunicorn(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = log_path.open("wb")
    try:
        return subprocess.Popen(
            [str(BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()


def wait_healthy(
    process: subprocess.Popen, port: int, log_path: Path, deadline: float = 30
) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise BenchmarkError(f"gunicorn exited with {process.returncode}:\n" + _tail(log_path))
        try:
            api = Api(port, timeout=2)
            status, _ = api.request("GET", "/healthz")
            api.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchmarkError(f"/healthz did not answer within {deadline:.0f} s:\n" + _tail(log_path))


def server_model() -> str:
    """gunicorn's worker setup, read from gunicorn.conf.py under this environment."""
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    gunicorn_conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gunicorn_conf)

    kind = getattr(gunicorn_conf, "worker_class", "sync")
    threads = getattr(gunicorn_conf, "threads", 1)
    return f"{gunicorn_conf.workers} {kind} workers" + (
        f" x {threads} threads" if kind == "gthread" else ""
    )


def stop_gunicorn(process: subprocess.Popen) -> None:
    """SIGTERM to the master (graceful); SIGKILL to its own process group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# PostgreSQL -------------------------------------------------------------------------------


def _libpq_url(url: str) -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def create_pg_database(server_url: str) -> tuple[str, str]:
    """Create a fresh database on the server of `server_url`; return (name, SQLAlchemy URL)."""
    import psycopg

    name = f"privacy_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = server_url.rsplit("/", 1)[0] if "://" in server_url else server_url
    return name, f"{base}/{name}"


def drop_pg_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_server_version(server_url: str) -> str:
    import psycopg

    with psycopg.connect(_libpq_url(server_url), autocommit=True) as conn:
        return conn.execute("SHOW server_version").fetchone()[0].split()[0]


# One run ----------------------------------------------------------------------------------


def serve_account(
    database: str, env: dict[str, str], folder: Path, port: int, cleanup, client=None
) -> tuple[subprocess.Popen, Api, Path, str]:
    """Migrate, create the benchmark account, start gunicorn and add SYSTEMS to the account;
    returns the server, an API client (of class `client`, Api by default) with the admin
    token, the server's log and the token. `cleanup` (an ExitStack) stops what it started."""
    print(f"[{database}] migrating, creating the account", flush=True)
    run_cli(["db", "upgrade"], env, "db upgrade")
    created = run_cli(
        ["accounts", "create", "Benchmark GmbH", "--admin", "admin@bench.example.com"],
        env,
        "accounts create",
    )
    token = json.loads(created.strip().splitlines()[-1])["api_token"]

    log_path = folder / "gunicorn.log"
    server = start_gunicorn(env, log_path)
    cleanup.callback(stop_gunicorn, server)
    wait_healthy(server, port, log_path)
    print(f"[{database}] gunicorn on 127.0.0.1:{port}, {server_model()}", flush=True)

    api = (client or Api)(port, token, timeout=GUNICORN_TIMEOUT + 60)
    cleanup.callback(api.close)
    for system in SYSTEMS:
        api.json("POST", "/api/v1/systems", system, expect=201)
    return server, api, log_path, token


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def bench(
    database: str, args: argparse.Namespace, body: bytes, emails: list[str], rng: random.Random
) -> Result:
    result = Result(database=database, rows=len(emails), upload_mb=len(body) / 1e6)
    with ExitStack() as cleanup:
        folder = Path(tempfile.mkdtemp(prefix=f"privacy-bench-{database}-"))
        cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        # The app's own settings come from this run only; gunicorn tuning (WEB_CONCURRENCY,
        # PRIVACY_WEB_THREADS) passes through so it can be compared.
        env = {k: v for k, v in os.environ.items() if k not in APP_SETTINGS}
        port = args.port or free_port()
        env.update(
            {
                "PRIVACY_INSTANCE_PATH": str(folder / "instance"),
                "PORT": str(port),
                "PRIVACY_BIND": f"127.0.0.1:{port}",
                "PRIVACY_MAX_IMPORT_ROWS": str(max(args.rows, 100_000)),
            }
        )
        if database == "postgresql":
            name, url = create_pg_database(args.pg_url)
            cleanup.callback(drop_pg_database, args.pg_url, name)
            env["PRIVACY_DATABASE_URL"] = url
            result.server = f"PostgreSQL {pg_server_version(args.pg_url)}"
        else:
            result.server = f"SQLite {sqlite3.sqlite_version}"

        server, api, log_path, _token = serve_account(database, env, folder, port, cleanup)
        other = run_cli(
            ["accounts", "create", "Other Tenant Ltd", "--admin", "admin@other.example.com"],
            env,
            "accounts create (other)",
        )
        other_api = Api(port, json.loads(other.strip().splitlines()[-1])["api_token"])
        cleanup.callback(other_api.close)
        api.connection.close()  # idle past gunicorn's keep-alive meanwhile: a fresh one

        print(
            f"[{database}] importing {len(emails):,} rows ({result.upload_mb:.1f} MB CSV), "
            "another account writing meanwhile",
            flush=True,
        )
        importing = threading.Event()
        importing.set()
        writer = threading.Thread(target=write_meanwhile, args=(other_api, importing, result))
        started = time.perf_counter()
        writer.start()
        try:
            status, raw = api.request("POST", "/api/v1/subjects/import", body, "text/csv")
        except (http.client.HTTPException, OSError) as exc:
            elapsed = time.perf_counter() - started
            raise BenchmarkError(
                f"import request failed after {elapsed:.1f} s ({type(exc).__name__}); gunicorn "
                f"kills a worker after {GUNICORN_TIMEOUT} s:\n" + _tail(log_path)
            ) from None
        finally:
            importing.clear()
            writer.join()
        result.import_seconds = time.perf_counter() - started
        if status != 201:
            raise BenchmarkError(f"import answered {status}: {raw[:500].decode(errors='replace')}")
        imported = json.loads(raw)["imported"]
        if imported != len(emails):
            raise BenchmarkError(f"import reported {imported} rows, sent {len(emails)}")
        print(
            f"[{database}] imported in {result.import_seconds:.2f} s ({result.rate:,.0f} rows/s)",
            flush=True,
        )

        # Presence check: first, last and a random sample must be found with the right data.
        for email in [emails[0], emails[-1], *rng.sample(emails, min(20, len(emails)))]:
            found = api.json("POST", "/api/v1/subjects/lookup", {"email": email})
            if found["email"].lower() != email:  # kept as sent: one in seven capitalized
                raise BenchmarkError("lookup returned a different subject")

        result.lookups, result.misses = lookup_latency(api, emails, args.lookups, rng, result)
        result.reconnects = api.reconnects
        stop_gunicorn(server)
        # The last `lookups` access-log lines are the measured requests (warm-up came first).
        server_ms = [
            float(ms) for _code, ms in ACCESS_LINE.findall(log_path.read_text(errors="replace"))
        ]
        result.server_ms = server_ms[-result.lookups :]
    return result


def write_meanwhile(api: Api, importing: threading.Event, result: Result) -> None:
    """Create subjects in another account, one after the other, while `importing` is set."""
    number = 0
    while importing.is_set():
        body = json.dumps(
            {"name": "Other Person", "email": f"other.{number}@other.example.com"}
        ).encode()
        started = time.perf_counter()
        try:
            status, _raw = api.request("POST", "/api/v1/subjects", body)
        except (http.client.HTTPException, OSError):
            status = 0  # no answer at all
            api.connection.close()
        result.other_writes.append((status, (time.perf_counter() - started) * 1000))
        number += 1
        time.sleep(0.02)


def lookup_latency(
    api: Api, emails: list[str], count: int, rng: random.Random, result: Result
) -> tuple[int, int]:
    """Time `count` lookups (about 10% of them absent, expecting 404) after a warm-up."""
    warmup = min(200, max(20, count // 10))
    plan = [(email, 200) for email in rng.sample(emails, min(len(emails), warmup + count))]
    missing = [
        (f"nobody.{uuid.uuid4().hex[:12]}@absent.example.com", 404) for _ in range(count // 10)
    ]
    measured = plan[warmup : warmup + count - len(missing)] + missing
    rng.shuffle(measured)
    for email, expect in plan[:warmup]:
        api.json("POST", "/api/v1/subjects/lookup", {"email": email}, expect=expect)
    api.reconnects = 0
    for email, expect in measured:
        body = json.dumps({"email": email}).encode()
        started = time.perf_counter()
        status, raw = api.request("POST", "/api/v1/subjects/lookup", body)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        if status != expect:
            raise BenchmarkError(
                f"lookup answered {status}, expected {expect}: {raw[:200].decode(errors='replace')}"
            )
    return len(measured), len(missing)


# Report -----------------------------------------------------------------------------------


def code_version(folder: str = "privacy") -> str:
    """The commit, and a digest of the sources under `folder` (the tree may differ from it)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    digest = hashlib.sha256()
    for path in sorted((ROOT / folder).rglob("*.py")):
        digest.update(path.read_bytes())
    return f"commit {commit or '?'}, {folder}/*.py sha256 {digest.hexdigest()[:12]}"


def report(results: list[Result], command: str, load_before: float) -> None:
    print()
    print(
        f"Inventory benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"gunicorn {server_model()}; load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    print(f"code: {code_version()}")
    print(f"command: {command}")
    print()
    header = (
        f"{'database':<18} {'rows':>8} {'import s':>9} {'rows/s':>8} {'>=5000/s':>8}  "
        f"{'lookups':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'<=10ms':>6}  {'server p50/p99 ms':>17}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.error:
            print(f"{r.server or r.database:<18} ERROR: {r.error.splitlines()[0]}")
            continue
        lat = r.latencies_ms
        p99 = percentile(lat, 99)
        srv = (
            f"{percentile(r.server_ms, 50):.1f} / {percentile(r.server_ms, 99):.1f}"
            if r.server_ms
            else "n/a"
        )
        print(
            f"{r.server:<18} {r.rows:>8,} {r.import_seconds:>9.2f} {r.rate:>8,.0f} "
            f"{'ok' if r.rate >= IMPORT_TARGET else 'MISSED':>8}  "
            f"{len(lat):>7,} {statistics.median(lat):>7.2f} {percentile(lat, 90):>7.2f} "
            f"{p99:>7.2f} {max(lat):>7.2f} {'ok' if p99 <= LOOKUP_P99_TARGET else 'MISSED':>6}  "
            f"{srv:>17}"
        )
    print()
    print(
        "import: one POST /api/v1/subjects/import (text/csv) timed end to end; lookups: "
        "POST /api/v1/subjects/lookup, one client, sequential, after a warm-up."
    )
    print("server p50/p99 is the app's own access-log time (excludes HTTP and TCP connect).")
    for r in results:
        if r.error or not r.other_writes:
            continue
        times = [ms for _status, ms in r.other_writes]
        failed = sum(status != 201 for status, _ms in r.other_writes)
        print(
            f"{r.server}: another account's writes during the import: {len(times)}, "
            f"p50 {statistics.median(times):.1f} ms, p99 {percentile(times, 99):.1f} ms, "
            f"max {max(times):.1f} ms, not 201: {failed}"
        )
    for r in results:
        if not r.error:
            print(f"{r.server}: {r.misses} of the {r.lookups} lookups were absent e-mails (404).")
    for r in results:
        if not r.error and r.reconnects:
            print(
                f"{r.server}: the server closed the connection after {r.reconnects} of "
                f"{r.lookups} responses (sync workers do not keep connections alive), so "
                "the client time includes a loopback TCP connect."
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help="PostgreSQL server to create the throw-away database on (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the cleanup (gunicorn, database, folders) still runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.rows < 1 or args.lookups < 10:
        parser.error("--rows must be >= 1 and --lookups >= 10")

    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
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
    rng = random.Random(args.seed)
    print(f"generating {args.rows:,} subjects", flush=True)
    body, emails = make_csv(args.rows, rng)

    results = []
    for database in databases:
        try:
            results.append(bench(database, args, body, emails, random.Random(args.seed + 1)))
        except (BenchmarkError, OSError, subprocess.SubprocessError, ImportError) as exc:
            print(f"[{database}] ERROR: {exc}", file=sys.stderr, flush=True)
            results.append(Result(database=database, error=str(exc)))
        except Exception as exc:  # noqa: BLE001 - psycopg errors etc.: report, try the next
            print(f"[{database}] ERROR: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            results.append(Result(database=database, error=f"{type(exc).__name__}: {exc}"))
    report(results, command, load_before)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
