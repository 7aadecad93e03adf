"""Data-subject request benchmark: submit -> completed, and erasure throughput, over real HTTP.

Runs the service as production does (migrations, `flask accounts create`, gunicorn with
gunicorn.conf.py, the Celery worker of the Procfile without beat) on a throw-away
instance folder and, for PostgreSQL, a throw-away database and an empty Redis database as
the broker. It seeds one account with `--subjects` subjects through the bulk import API,
warms the worker with throw-away requests (two of each kind, so both pool processes have
run each), then prints:

- access and erasure: seconds from `POST /opendsr/v1/requests` until
  `GET /opendsr/v1/requests/<id>` says `completed`, one request at a time (median, max);
- paused: `--erasures` erasure requests for distinct subjects, posted at once from a thread
  pool while the worker's processes are stopped (SIGSTOP: they stay warm), then resumed;
  completed/s from the resumption to the last completion: what the worker alone manages;
- erasures: as many more, posted the same way while the worker runs; completed/s from the
  first POST to the last completion, and from the first task start to the last completion.

For each batch it also prints the CPU time the worker's and gunicorn's processes used per
erasure (from /proc), which depends less on other load than the rates do. The paused batch
runs first: if the worker dies in the other one, its figure is still there.

Targets come from the issue: access and erasure <= 5 s each, erasure throughput >= 100/s.
A missed target is printed as MISSED; only errors give a non-zero exit. A POST answered 5xx
is sent again after a pause, as a controller would, and counted.

    .venv/bin/python benchmarks/dsr.py                        # SQLite, then PostgreSQL + Redis
    .venv/bin/python benchmarks/dsr.py --database sqlite --subjects 5000 --erasures 200
    .venv/bin/python benchmarks/dsr.py --database postgresql --concurrency 4 --no-paused
    .venv/bin/python benchmarks/dsr.py --database sqlite --profile /tmp/dsr-prof

`--profile DIR` runs each worker pool process under cProfile (CPU time) and writes one
`.pstats` file per process into DIR (read them with `python -m pstats`); figures of such a
run are slower and only good for finding where the time goes. `--keep` keeps the instance
folder with the gunicorn and worker logs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shlex
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.inventory import APP_SETTINGS  # noqa: E402
from benchmarks.inventory import BIN  # noqa: E402
from benchmarks.inventory import DEFAULT_PG_URL  # noqa: E402
from benchmarks.inventory import GUNICORN_TIMEOUT  # noqa: E402
from benchmarks.inventory import Api  # noqa: E402
from benchmarks.inventory import BenchmarkError  # noqa: E402
from benchmarks.inventory import _tail  # noqa: E402
from benchmarks.inventory import code_version  # noqa: E402
from benchmarks.inventory import create_pg_database  # noqa: E402
from benchmarks.inventory import drop_pg_database  # noqa: E402
from benchmarks.inventory import free_port  # noqa: E402
from benchmarks.inventory import make_csv  # noqa: E402
from benchmarks.inventory import pg_server_version  # noqa: E402
from benchmarks.inventory import serve_account  # noqa: E402
from benchmarks.inventory import server_model  # noqa: E402

LATENCY_TARGET = 5.0  # seconds, submit -> completed, access and erasure each
THROUGHPUT_TARGET = 100.0  # erasures completed per second
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
POLL_SECONDS = 0.02  # status polling of one request; the resolution of the latency figures
REQUEST_TIMEOUT = 120.0  # one request that takes longer is an error, not a figure
PROFILE_ENV = "DSR_BENCH_PROFILE_DIR"
SUBMIT_ATTEMPTS = 50


@dataclass
class Timing:
    """One request: seconds seen by the client, and the server's own timestamps."""

    client: float
    queued: float  # received -> the worker took it (in_progress)
    work: float  # in_progress -> completed


@dataclass
class Batch:
    """One batch of erasures for distinct subjects, posted at once."""

    count: int = 0  # requests taken (201)
    submit_seconds: float = 0.0  # first POST -> all POSTs answered
    retried: int = 0  # POSTs answered 5xx and sent again
    refused: int = 0  # POSTs given up after SUBMIT_ATTEMPTS answers 5xx (not in `count`)
    wall_seconds: float = 0.0  # first POST -> last completion
    worker_seconds: float = 0.0  # first task start -> last completion
    resumed_seconds: float = 0.0  # worker resumed -> last completion (paused batches only)
    worker_cpu: float = 0.0  # CPU seconds the worker's processes used meanwhile
    consumer_cpu: float = 0.0  # of which its main process (broker, dispatch to the pool)
    web_cpu: float = 0.0  # CPU seconds gunicorn's processes used meanwhile

    def rate(self, seconds: float) -> float:
        return self.count / seconds if seconds else 0.0


@dataclass
class Result:
    database: str
    server: str = ""
    broker: str = ""
    subjects: int = 0
    import_seconds: float = 0.0
    access: list[Timing] = field(default_factory=list)
    erasure: list[Timing] = field(default_factory=list)
    retried_single: int = 0  # POSTs of the single requests answered 5xx and sent again
    batch: Batch | None = None  # posted while the worker runs
    paused: Batch | None = None  # posted while the worker is stopped, then resumed
    batch_error: str | None = None  # the worker died during a batch
    error: str | None = None


class Client(Api):
    """Api that reconnects once when the server closed an idle keep-alive connection
    (gunicorn's gthread workers do after a few seconds; the benchmark has idle gaps)."""

    def request(self, method, path, body=None, content_type="application/json"):
        try:
            return super().request(method, path, body, content_type)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # Closed before the request was read: nothing was done, sending again is safe
            # (a POST that did arrive would answer 409, not create a second request).
            self.connection.close()
            return super().request(method, path, body, content_type)


# The worker -------------------------------------------------------------------------------


def worker_command(concurrency: int = 0, profile: bool = False) -> list[str]:
    """The Procfile's worker, without beat (its five-minute sweep would re-queue work);
    `concurrency` replaces the Procfile's --concurrency when given."""
    line = next(
        line.partition(":")[2]
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.startswith("worker:")
    )
    args = [arg for arg in shlex.split(line) if arg != "--beat"]
    args[0] = str(BIN / Path(args[0]).name)
    if concurrency:
        if "--concurrency" in args:
            del args[args.index("--concurrency") : args.index("--concurrency") + 2]
        args += ["--concurrency", str(concurrency)]
    if profile:
        args[args.index("workers.celery_app")] = "benchmarks.dsr:profiled_celery_app"
    return args


def start_worker(
    env: dict[str, str], log_path: Path, concurrency: int, profile: bool
) -> subprocess.Popen:
    log = log_path.open("wb")
    try:
        return subprocess.Popen(
            worker_command(concurrency, profile),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()


def wait_worker_ready(process: subprocess.Popen, log_path: Path, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise BenchmarkError(
                f"the worker exited with {process.returncode}:\n" + _tail(log_path)
            )
        if " ready." in log_path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise BenchmarkError(f"the worker was not ready within {deadline:.0f} s:\n" + _tail(log_path))


def stop_worker(process: subprocess.Popen) -> None:
    """Warm shutdown (SIGTERM: children finish their task and exit), then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _profiled_celery_app():
    """The worker's app with each pool process under cProfile, counting CPU time (tasks,
    Celery's own work in the process, logging), one stats file per process, written every 20
    tasks and at exit."""
    import cProfile

    from celery.signals import task_postrun
    from celery.signals import worker_process_init
    from celery.signals import worker_process_shutdown

    from workers.celery_app import celery_app

    folder = Path(os.environ[PROFILE_ENV])
    # CPU time, not wall time: waits (database, locks, fsync, an idle pool) do not count.
    profiler = cProfile.Profile(time.process_time)
    tasks = [0]

    def dump() -> None:
        profiler.disable()  # dump_stats needs it off; on again right after
        profiler.dump_stats(folder / f"worker-{os.getpid()}.pstats")
        profiler.enable()

    @worker_process_init.connect(weak=False)
    def _start(**_kwargs):
        profiler.enable()

    @task_postrun.connect(weak=False)
    def _count(**_kwargs):
        tasks[0] += 1
        if tasks[0] % 20 == 0:  # a prefork child may be killed rather than shut down
            dump()

    @worker_process_shutdown.connect(weak=False)
    def _dump(**_kwargs):
        dump()

    return celery_app


_profiled: list = []


def __getattr__(name: str):
    # `celery --app benchmarks.dsr:profiled_celery_app` (only with --profile).
    if name == "profiled_celery_app":
        if not _profiled:
            _profiled.append(_profiled_celery_app())
        return _profiled[0]
    raise AttributeError(name)


def group_cpu_seconds(pgid: int, leader_only: bool = False) -> float:
    """CPU time (user + system) of the live processes in a process group (or of its leader
    alone), from /proc."""
    total = 0
    for stat in Path("/proc").glob(f"{pgid}/stat" if leader_only else "[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


# Redis ------------------------------------------------------------------------------------


def claim_redis_database(server_url: str) -> str:
    """An empty Redis database number on the server (others' queues must not mix with ours)."""
    import redis

    base = server_url.rstrip("/")
    for number in range(15, 0, -1):
        client = redis.Redis.from_url(f"{base}/{number}")
        try:
            if client.dbsize() == 0:
                client.set("dsr-benchmark-claim", "1")
                return f"{base}/{number}"
        finally:
            client.close()
    raise BenchmarkError(f"no empty Redis database on {base} (checked 1 to 15)")


def release_redis_database(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()  # only our queue, bindings and the claim key: it was empty before
    finally:
        client.close()


# Requests ---------------------------------------------------------------------------------


def request_body(kind: str, email: str) -> bytes:
    return json.dumps(
        {
            "regulation": "gdpr",
            "subject_request_id": str(uuid.uuid4()),
            "subject_request_type": kind,
            "submitted_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "subject_identities": [
                {"identity_type": "email", "identity_value": email, "identity_format": "raw"}
            ],
        }
    ).encode()


class Refused(BenchmarkError):
    """A POST still answered 5xx after SUBMIT_ATTEMPTS tries."""


def submit(api: Api, body: bytes, retried: list[int]) -> str:
    """POST one request; a 5xx answer is sent again after a pause, as a controller would,
    and counted in `retried` (Refused after SUBMIT_ATTEMPTS)."""
    for attempt in range(SUBMIT_ATTEMPTS):
        status, raw = api.request("POST", "/opendsr/v1/requests", body)
        if status == 201 or (status == 409 and attempt):  # 409: the earlier try got in
            return json.loads(body)["subject_request_id"]
        if status < 500:
            break
        retried.append(status)
        time.sleep(random.uniform(0, min(1.0, 0.01 * 2**attempt)))  # full-jitter backoff
    else:
        raise Refused(f"POST /opendsr/v1/requests answered {status} {SUBMIT_ATTEMPTS} times")
    raise BenchmarkError(
        f"POST /opendsr/v1/requests answered {status}: {raw[:300].decode(errors='replace')}"
    )


def status_of(api: Api, subject_request_id: str) -> dict:
    """GET the request's status; a 5xx answer is asked again after a pause (SQLite answers
    'database is locked' under concurrent writes: docs/benchmarks.md)."""
    path = f"/opendsr/v1/requests/{subject_request_id}"
    for attempt in range(SUBMIT_ATTEMPTS):
        status, raw = api.request("GET", path)
        if status < 500:
            break
        time.sleep(random.uniform(0, min(1.0, 0.01 * 2**attempt)))
    if status != 200:
        raise BenchmarkError(f"GET {path} answered {status}: {raw[:300].decode(errors='replace')}")
    return json.loads(raw)


def wait_completed(api: Api, subject_request_id: str, timeout: float = REQUEST_TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while True:
        answer = status_of(api, subject_request_id)
        if answer["request_status"] == "completed":
            return
        if answer["request_status"] == "cancelled":
            raise BenchmarkError(f"request {subject_request_id} was cancelled (rejected)")
        if time.monotonic() > end:
            raise BenchmarkError(
                f"request {subject_request_id} still {answer['request_status']} after {timeout} s"
            )
        time.sleep(POLL_SECONDS)


class Timeline:
    """The server's own timestamps of requests, read from the database (read-only)."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine

        self.engine = create_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def request(self, subject_request_id: str) -> tuple[datetime, datetime, datetime]:
        """(received, taken by the worker, completed) of one request."""
        from sqlalchemy import select

        from privacy.dsr.models import DataSubjectRequest
        from privacy.dsr.models import RequestEvent

        with self.engine.connect() as conn:
            row = conn.execute(
                select(DataSubjectRequest.received_at, DataSubjectRequest.completed_at)
                .add_columns(
                    select(RequestEvent.at)
                    .where(
                        RequestEvent.request_id == DataSubjectRequest.id,
                        RequestEvent.action == "in_progress",
                    )
                    .scalar_subquery()
                )
                .where(DataSubjectRequest.subject_request_id == uuid.UUID(subject_request_id))
            ).one()
        received, completed, taken = row
        return received, taken, completed

    def completed(self, since: datetime) -> int:
        """How many erasures received since `since` are completed (a cheap count)."""
        from sqlalchemy import func
        from sqlalchemy import select

        from privacy.dsr.models import DataSubjectRequest

        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).where(
                    DataSubjectRequest.kind == "erasure",
                    DataSubjectRequest.received_at >= since,
                    DataSubjectRequest.status == "completed",
                )
            ).scalar()

    def span(self, since: datetime) -> tuple[datetime, datetime]:
        """Erasures received since `since`: (first task start, last completion)."""
        from sqlalchemy import func
        from sqlalchemy import select

        from privacy.dsr.models import DataSubjectRequest
        from privacy.dsr.models import RequestEvent

        batch = (DataSubjectRequest.kind == "erasure", DataSubjectRequest.received_at >= since)
        with self.engine.connect() as conn:
            last = conn.execute(select(func.max(DataSubjectRequest.completed_at)).where(*batch))
            first = conn.execute(
                select(func.min(RequestEvent.at))
                .join(DataSubjectRequest, DataSubjectRequest.id == RequestEvent.request_id)
                .where(*batch, RequestEvent.action == "in_progress")
            )
            return first.scalar(), last.scalar()


def one_by_one(
    api: Api, timeline: Timeline, kind: str, emails: list[str], retried: list[int]
) -> list[Timing]:
    """Submit -> completed for each e-mail in turn (nothing else queued)."""
    timings = []
    for email in emails:
        body = request_body(kind, email)
        started = time.perf_counter()
        subject_request_id = submit(api, body, retried)
        wait_completed(api, subject_request_id)
        client = time.perf_counter() - started
        received, taken, completed = timeline.request(subject_request_id)
        timings.append(
            Timing(
                client=client,
                queued=(taken - received).total_seconds(),
                work=(completed - taken).total_seconds(),
            )
        )
    return timings


def erasure_batch(
    port: int,
    token: str,
    timeline: Timeline,
    emails: list[str],
    clients: int,
    worker: subprocess.Popen,
    worker_log: Path,
    server: subprocess.Popen,
    pause: bool = False,
) -> Batch:
    """Post one erasure per e-mail at once from `clients` threads; time until all completed.

    With `pause`, the worker's processes are stopped (SIGSTOP, they stay warm) until every
    POST is answered, so that the worker then meets the whole batch queued at once.
    """
    batch = Batch(count=len(emails))
    bodies = [request_body("erasure", email) for email in emails]
    local = threading.local()
    connections: list[Api] = []

    def thread_api() -> Api:
        if not hasattr(local, "api"):
            local.api = Client(port, token, timeout=GUNICORN_TIMEOUT)
            connections.append(local.api)
        return local.api

    retried: list[int] = []

    def post(body: bytes) -> str | None:
        try:
            return submit(thread_api(), body, retried)
        except Refused:
            return None  # counted; the batch goes on with the requests that were taken

    since = datetime.now(UTC)  # the requests before the batch were received (and done) earlier
    if pause:
        os.killpg(worker.pid, signal.SIGSTOP)
    cpu_before = (
        group_cpu_seconds(worker.pid),
        group_cpu_seconds(server.pid),
        group_cpu_seconds(worker.pid, leader_only=True),
    )
    try:
        started_wall = time.time()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            ids = [i for i in pool.map(post, bodies) if i is not None]
            batch.submit_seconds = time.perf_counter() - started
            batch.retried = len(retried)
            batch.refused = len(bodies) - len(ids)
            batch.count = len(ids)
            if pause:
                resumed_wall = time.time()
                os.killpg(worker.pid, signal.SIGCONT)
            deadline = time.monotonic() + max(REQUEST_TIMEOUT, len(ids) / 5)
            while True:
                done = timeline.completed(since)
                if done >= len(ids):
                    break
                if worker.poll() is not None:
                    raise BenchmarkError(
                        f"the worker exited with {worker.returncode} after {done} of "
                        f"{len(ids)} erasures:\n" + _tail(worker_log, 25)
                    )
                if time.monotonic() > deadline:
                    raise BenchmarkError(f"only {done} of {len(ids)} erasures completed in time")
                time.sleep(0.1)
            batch.worker_cpu = group_cpu_seconds(worker.pid) - cpu_before[0]
            batch.web_cpu = group_cpu_seconds(server.pid) - cpu_before[1]
            batch.consumer_cpu = group_cpu_seconds(worker.pid, leader_only=True) - cpu_before[2]
            # Every request must also say so over the API, not only in the database.
            answers = list(pool.map(lambda i: status_of(thread_api(), i), ids))
    finally:
        if pause and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGCONT)
        for api in connections:
            api.close()
    not_done = sum(1 for a in answers if a["request_status"] != "completed")
    if not_done or done != len(ids):
        raise BenchmarkError(
            f"{not_done} erasures do not report completed; {done} completed, taken {len(ids)}"
        )
    first, last = timeline.span(since)
    batch.wall_seconds = last.timestamp() - started_wall
    batch.worker_seconds = (last - first).total_seconds()
    if pause:
        batch.resumed_seconds = last.timestamp() - resumed_wall
    return batch


def needed(args: argparse.Namespace) -> int:
    """Distinct subjects a run uses: warm-up, single requests, the batches."""
    return 4 + 2 * args.runs + args.erasures * (2 if args.paused else 1)


# One run ----------------------------------------------------------------------------------


def bench(database: str, args: argparse.Namespace, body: bytes, emails: list[str]) -> Result:
    result = Result(database=database, subjects=len(emails))
    rng = random.Random(args.seed + 1)
    # Distinct people for each part: warm-up, access, erasure, the batch.
    picked = rng.sample(emails, needed(args))
    warm, picked = picked[:4], picked[4:]
    access, picked = picked[: args.runs], picked[args.runs :]
    erase, picked = picked[: args.runs], picked[args.runs :]
    batch, paused = picked[: args.erasures], picked[args.erasures :]

    with ExitStack() as cleanup:
        folder = Path(tempfile.mkdtemp(prefix=f"privacy-dsr-bench-{database}-"))
        if args.keep:
            print(f"[{database}] instance folder and logs: {folder} (kept)", flush=True)
        else:
            cleanup.callback(_remove, folder)
        env = {k: v for k, v in os.environ.items() if k not in APP_SETTINGS}
        port = args.port or free_port()
        env.update(
            {
                "PRIVACY_INSTANCE_PATH": str(folder / "instance"),
                "PORT": str(port),
                "PRIVACY_BIND": f"127.0.0.1:{port}",
                "PRIVACY_MAX_IMPORT_ROWS": str(max(len(emails), 100_000)),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            env[PROFILE_ENV] = str(Path(args.profile).resolve() / database)
            Path(env[PROFILE_ENV]).mkdir(exist_ok=True)
        if database == "postgresql":
            name, url = create_pg_database(args.pg_url)
            cleanup.callback(drop_pg_database, args.pg_url, name)
            env["PRIVACY_DATABASE_URL"] = url
            broker = claim_redis_database(args.redis_url)
            cleanup.callback(release_redis_database, broker)
            env["PRIVACY_BROKER_URL"] = broker
            result.server = f"PostgreSQL {pg_server_version(args.pg_url)}"
            result.broker = "Redis"
        else:
            url = f"sqlite:///{folder / 'instance' / 'privacy.sqlite3'}"
            result.server = f"SQLite {sqlite3.sqlite_version}"
            result.broker = "filesystem"

        server, api, log_path, token = serve_account(database, env, folder, port, cleanup, Client)
        print(f"[{database}] importing {len(emails):,} subjects", flush=True)
        started = time.perf_counter()
        status, raw = api.request("POST", "/api/v1/subjects/import", body, "text/csv")
        result.import_seconds = time.perf_counter() - started
        if status != 201 or json.loads(raw)["imported"] != len(emails):
            raise BenchmarkError(f"import answered {status}: {raw[:300].decode(errors='replace')}")
        print(f"[{database}] imported in {result.import_seconds:.1f} s", flush=True)

        worker_log = folder / "worker.log"
        worker = start_worker(env, worker_log, args.concurrency, bool(args.profile))
        cleanup.callback(stop_worker, worker)
        wait_worker_ready(worker, worker_log)
        timeline = Timeline(url)
        cleanup.callback(timeline.close)

        # Warm-up: two of each kind at once, so that both worker processes have run each.
        warm_ids = [
            submit(api, request_body(kind, email), [])
            for kind, email in zip(("access", "erasure", "access", "erasure"), warm, strict=True)
        ]
        for subject_request_id in warm_ids:
            wait_completed(api, subject_request_id)
        print(
            f"[{database}] worker warm ({' '.join(worker_command(args.concurrency)[1:])})",
            flush=True,
        )

        retried: list[int] = []
        result.access = one_by_one(api, timeline, "access", access, retried)
        print(f"[{database}] access: {_summary(result.access)}", flush=True)
        result.erasure = one_by_one(api, timeline, "erasure", erase, retried)
        result.retried_single = len(retried)
        print(f"[{database}] erasure: {_summary(result.erasure)}", flush=True)
        # The paused batch first: with the embedded broker, a worker may die while messages
        # are being written (docs/benchmarks.md); the worker-side figure is then still there.
        for emails_, pause in ((paused, True), (batch, False)):
            if not emails_:
                continue
            try:
                done = erasure_batch(
                    port, token, timeline, emails_, args.clients, worker, worker_log, server, pause
                )
            except BenchmarkError as exc:
                if worker.poll() is None:
                    raise
                result.batch_error = str(exc)
                print(f"[{database}] ERROR: {exc}", file=sys.stderr, flush=True)
                break
            if pause:
                result.paused = done
                figures = f"{done.rate(done.resumed_seconds):.0f}/s from the worker's resumption"
            else:
                result.batch = done
                figures = (
                    f"{done.rate(done.wall_seconds):.0f}/s from the first POST, "
                    f"{done.rate(done.worker_seconds):.0f}/s from the first task start"
                )
            print(
                f"[{database}] {done.count:,} erasures{' (worker paused)' if pause else ''}: "
                f"posted in {done.submit_seconds:.2f} s ({done.retried} answers 5xx, sent "
                f"again; {done.refused} given up), {figures}; CPU per erasure: worker "
                f"{done.worker_cpu / done.count * 1000:.1f} ms (main process "
                f"{done.consumer_cpu / done.count * 1000:.1f} ms), web "
                f"{done.web_cpu / done.count * 1000:.1f} ms",
                flush=True,
            )
        stop_worker(worker)
        if "Traceback" in worker_log.read_text(errors="replace"):
            print(f"[{database}] note: the worker log holds a traceback:\n" + _tail(worker_log, 30))
    return result


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _summary(timings: list[Timing]) -> str:
    client = [t.client for t in timings]
    return (
        f"median {statistics.median(client):.2f} s, max {max(client):.2f} s "
        f"(queued {statistics.median(t.queued for t in timings):.3f} s, "
        f"work {statistics.median(t.work for t in timings):.3f} s)"
    )


# Report -----------------------------------------------------------------------------------


def _ok(passed: bool) -> str:
    return "ok" if passed else "MISSED"


def report(results: list[Result], args: argparse.Namespace, command: str, load: float) -> None:
    print()
    print(
        f"DSR benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, gunicorn "
        f"{server_model()}, worker `{' '.join(worker_command(args.concurrency)[1:])}`; "
        f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print(f"code: {code_version()}")
    print(f"command: {command}")
    print()
    header = (
        f"{'database':<18} {'broker':<10} {'subjects':>8}  {'access s':>8} {'max':>5} "
        f"{'<=5s':>6}  {'erasure s':>9} {'max':>5} {'<=5s':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.error:
            print(f"{r.server or r.database:<18} ERROR: {r.error.splitlines()[0]}")
            continue
        access = [t.client for t in r.access]
        erasure = [t.client for t in r.erasure]
        print(
            f"{r.server:<18} {r.broker:<10} {r.subjects:>8,}  "
            f"{statistics.median(access):>8.2f} {max(access):>5.2f} "
            f"{_ok(max(access) <= LATENCY_TARGET):>6}  "
            f"{statistics.median(erasure):>9.2f} {max(erasure):>5.2f} "
            f"{_ok(max(erasure) <= LATENCY_TARGET):>6}"
        )
    print()
    header = (
        f"{'database':<18} {'erasures':>8} {'POST s':>7} {'POST/s':>7} {'5xx':>5}  "
        f"{'done/s':>7} {'>=100/s':>7} {'worker/s':>8}  {'paused: POST/s':>14} "
        f"{'drain/s':>7} {'>=100/s':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.batch_error:
            print(f"{r.server:<18} ERROR: {r.batch_error.splitlines()[0]}")
        if r.error or not (r.batch or r.paused):
            continue
        line = f"{r.server:<18} "
        if r.batch:
            b = r.batch
            done = b.rate(b.wall_seconds)
            line += (
                f"{b.count:>8,} {b.submit_seconds:>7.2f} {b.rate(b.submit_seconds):>7.0f} "
                f"{b.retried:>5}  {done:>7.0f} {_ok(done >= THROUGHPUT_TARGET):>7} "
                f"{b.rate(b.worker_seconds):>8.0f}  "
            )
        else:
            line += f"{'-':>8} {'':>7} {'':>7} {'':>5}  {'':>7} {'':>7} {'':>8}  "
        if r.paused:
            p = r.paused
            drain = p.rate(p.resumed_seconds)
            line += (
                f"{p.rate(p.submit_seconds):>14.0f} {drain:>7.0f} "
                f"{_ok(drain >= THROUGHPUT_TARGET):>7}"
            )
        print(line)
    print()
    print(
        f"access, erasure: submit -> completed seen by the client (POST, then GET every "
        f"{POLL_SECONDS * 1000:.0f} ms), one request at a time, median and max of {args.runs}; "
        "the target is checked against the max."
    )
    print(
        f"erasures: {args.erasures:,} erasures for distinct subjects posted at once from "
        f"{args.clients} threads while the worker runs. done/s: from the first POST to the last "
        "completion (completed_at); worker/s: from the first task start to the last completion."
    )
    print(
        "paused: as many more, posted while the worker's processes are stopped (SIGSTOP, they "
        "stay warm); drain/s: from their resumption to the last completion."
    )
    for r in results:
        for name, b in (("erasures", r.batch), ("paused", r.paused)):
            if not r.error and b:
                print(
                    f"{r.server}, {name}: CPU per erasure {b.worker_cpu / b.count * 1000:.1f} ms "
                    f"in the worker (its main process {b.consumer_cpu / b.count * 1000:.1f} ms), "
                    f"{b.web_cpu / b.count * 1000:.1f} ms in gunicorn "
                    "(the database server's own CPU not counted)."
                )
    for r in results:
        retried = sum(b.retried for b in (r.batch, r.paused) if b)
        refused = sum(b.refused for b in (r.batch, r.paused) if b)
        if not r.error and (retried or r.retried_single):
            print(
                f"{r.server}: POSTs answered 5xx and sent again: {retried} in the batches, "
                f"{r.retried_single} of the single requests; {refused} POSTs given up after "
                f"{SUBMIT_ATTEMPTS} tries (not counted in the rates). The server log says why: "
                "on SQLite, 'database is locked'."
            )
    for r in results:
        if not r.error:
            print(
                f"{r.server}: server side, median queued / work: access "
                f"{statistics.median(t.queued for t in r.access):.3f} / "
                f"{statistics.median(t.work for t in r.access):.3f} s, erasure "
                f"{statistics.median(t.queued for t in r.erasure):.3f} / "
                f"{statistics.median(t.work for t in r.erasure):.3f} s; import of "
                f"{r.subjects:,} subjects {r.import_seconds:.1f} s"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--subjects", type=int, default=100_000, help="subjects in the account")
    parser.add_argument("--erasures", type=int, default=1_000, help="erasures in the batch")
    parser.add_argument("--runs", type=int, default=5, help="single requests timed per kind")
    parser.add_argument(
        "--paused",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time --erasures more, queued while the worker is stopped (default: yes)",
    )
    parser.add_argument("--clients", type=int, default=16, help="threads posting the batch")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="worker processes (default: the Procfile's)"
    )
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help="PostgreSQL server to create the throw-away database on (default: %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help="Redis server; an empty database number on it is the broker (default: %(default)s)",
    )
    parser.add_argument("--profile", metavar="DIR", help="cProfile the worker's tasks into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the folder with the logs")
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.runs < 1 or args.erasures < 0:
        parser.error("--runs must be >= 1 and --erasures >= 0")
    if args.subjects < needed(args):
        parser.error(
            f"--subjects must cover the warm-up (4), 2 x --runs and the erasures: {needed(args)}"
        )

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
    print(f"generating {args.subjects:,} subjects", flush=True)
    body, emails = make_csv(args.subjects, random.Random(args.seed))

    results = []
    for database in databases:
        try:
            results.append(bench(database, args, body, emails))
        except (BenchmarkError, OSError, subprocess.SubprocessError, ImportError) as exc:
            print(f"[{database}] ERROR: {exc}", file=sys.stderr, flush=True)
            results.append(Result(database=database, error=str(exc)))
        except Exception as exc:  # noqa: BLE001 - psycopg, redis errors etc.: report, go on
            print(f"[{database}] ERROR: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            results.append(Result(database=database, error=f"{type(exc).__name__}: {exc}"))
    report(results, args, command, load_before)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
