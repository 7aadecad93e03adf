"""Backup benchmark: backup and restore of N subjects on PostgreSQL, against plain pg_dump | gzip.

Creates a throw-away database on the `--pg-url` server, applies the migrations and seeds one
account with `--subjects` subjects (default 1,000,000) through the app's bulk path (COPY,
contact fields encrypted and blind-indexed as the bulk import does, 0 to 3 systems each).
Then, in the same run, on the same database:

- plain: `pg_dump --format=custom | gzip > file` (the reference the target is set against);
- backup: `run_backup` (pg_dump on an exported snapshot, gzip, AES-256-GCM, checksum, manifest)
  into a local backup folder, or S3 with `--s3` (a moto server process over HTTP);
- restore: `restore` (fetch, checksum, decrypt, pg_restore, erasure replay) into a second
  throw-away database; and, for reference, `gunzip | pg_restore` of the plain file.

MB/s is the uncompressed dump (pg_dump's custom format without compression, as our backup
reads it) per second, so every figure shares one yardstick. Each measured step runs in a
process of its own. Its peak memory is the high-water RSS of that Python process
(getrusage's ru_maxrss) plus that of its largest child (pg_dump or pg_restore, VmHWM read
from /proc every 20 ms); the largest summed RSS of the process tree is printed beside it.

Targets from the issue: peak memory below 300 MB; backup throughput at least half of plain
`pg_dump | gzip`. A missed target is printed as MISSED; only errors give a non-zero exit.

    .venv/bin/python benchmarks/backups.py                     # 1,000,000 subjects
    .venv/bin/python benchmarks/backups.py --subjects 100000 --s3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.inventory import DEFAULT_PG_URL  # noqa: E402
from benchmarks.inventory import DOMAINS  # noqa: E402
from benchmarks.inventory import FIRST_NAMES  # noqa: E402
from benchmarks.inventory import LAST_NAMES  # noqa: E402
from benchmarks.inventory import SOURCES  # noqa: E402
from benchmarks.inventory import SYSTEMS  # noqa: E402
from benchmarks.inventory import BenchmarkError  # noqa: E402
from benchmarks.inventory import _ascii_slug  # noqa: E402
from benchmarks.inventory import _libpq_url  # noqa: E402
from benchmarks.inventory import code_version  # noqa: E402
from benchmarks.inventory import create_pg_database  # noqa: E402
from benchmarks.inventory import drop_pg_database  # noqa: E402
from benchmarks.inventory import free_port  # noqa: E402
from benchmarks.inventory import pg_server_version  # noqa: E402

MEMORY_TARGET_MB = 300.0
THROUGHPUT_TARGET = 0.5  # of plain pg_dump | gzip
SEED_CHUNK = 20_000
SAMPLE_SECONDS = 0.02
MB = 1_000_000
BENCH_KEYS = "bench1:" + "YmVuY2htYXJrLWJhY2t1cC1rZXktMzItYnl0ZXMhISE="  # 32 bytes, test only
MOTO_BUCKET = "privacy-bench-backups"
AWS_ENV = {
    # Dummy credentials only: nothing here may ever reach real AWS.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


# Memory -----------------------------------------------------------------------------------


def _status(pid: int) -> dict[str, str]:
    """Name, VmRSS and VmHWM (KiB) of a process from /proc; {} once it is gone."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("Name", "VmRSS", "VmHWM"):
                    found[key] = value.split()[0]
    except OSError:
        pass
    return found


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(child) for child in fh.read().split()]
        except OSError:
            continue
    return found


class Sampler(threading.Thread):
    """Memory of a process tree, sampled until stopped: the high-water mark of the summed
    RSS, and each program's own high-water mark (VmHWM, exact between samples too)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb = pid, 0
        self.hwm_kb: dict[str, int] = {}
        self._done = threading.Event()

    def sample(self) -> None:
        total, stack = 0, [self.pid]
        while stack:
            pid = stack.pop()
            status = _status(pid)
            if "VmRSS" in status:
                total += int(status["VmRSS"])
                name = status["Name"]
                self.hwm_kb[name] = max(self.hwm_kb.get(name, 0), int(status["VmHWM"]))
            stack += _children(pid)
        self.peak_kb = max(self.peak_kb, total)

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(SAMPLE_SECONDS)

    def stop(self) -> Sampler:
        self._done.set()
        self.join()
        return self


def measured(args: list[str], env: dict[str, str], step: str) -> tuple[float, Sampler, str]:
    """Run a command; (seconds, its memory, stdout). BenchmarkError if it fails."""
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 - our own fixed commands
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = Sampler(process.pid)
    sampler.start()
    out, err = process.communicate()
    seconds = time.monotonic() - started
    peak = sampler.stop()
    if process.returncode != 0:
        raise BenchmarkError(f"{step} failed ({process.returncode}):\n{err.strip()[-2000:]}")
    return seconds, peak, out


# The steps that run in a process of their own ------------------------------------------------


def _app(config: dict):
    from privacy import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": config["database"],
            "BACKUP_URL": config["backup_url"],
            "BACKUP_KEYS": BENCH_KEYS,
            "S3_ENDPOINT_URL": config.get("s3_endpoint"),
            "CELERY": {"broker_url": "memory://", "task_always_eager": True},
        }
    )


def _usage() -> dict:
    # Only our own high-water mark: a child's ru_maxrss (RUSAGE_CHILDREN) counts the memory
    # it shared with us before exec, so the children are measured from /proc instead.
    return {"self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def step_seed(config: dict) -> dict:
    """Migrations, one account with three systems, and `subjects` subjects in COPY chunks."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from privacy.accounts import services as accounts
    from privacy.database import bulk_insert
    from privacy.database import encrypt_contact
    from privacy.database import encrypt_field
    from privacy.database import ref_index
    from privacy.database import utcnow
    from privacy.extensions import db
    from privacy.inventory import services as inventory
    from privacy.inventory.models import Holding
    from privacy.inventory.models import Subject
    from privacy.inventory.models import System

    rng = random.Random(config["seed"])
    app = _app(config)
    with app.app_context():
        upgrade()
        account, _admin, _token = accounts.create_account(
            name="Bench GmbH",
            region="eu",
            admin_email="admin@bench.example",
            admin_name="Bea Bench",
            actor="benchmark",
        )
        systems = []
        for spec in SYSTEMS:
            system = System(public_id=uuid.uuid4(), account_id=account.id, **spec)
            db.session.add(system)
            systems.append(system)
        db.session.commit()
        scope = str(account.public_id)
        now = utcnow()
        total = config["subjects"]
        for start in range(0, total, SEED_CHUNK):
            rows, held = [], []
            for number in range(start, min(start + SEED_CHUNK, total)):
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                local = ".".join(p for p in (_ascii_slug(first), _ascii_slug(last)) if p)
                email = f"{local or 'user'}.{number}@{rng.choice(DOMAINS)}"
                public_id = uuid.uuid4()
                name_ct, email_ct, key_id = encrypt_contact(
                    "subjects", public_id, f"{first} {last}", email
                )
                ref = f"cust-{number:07d}" if rng.random() < 0.8 else None
                rows.append(
                    {
                        "public_id": public_id,
                        "account_id": account.id,
                        "external_ref_ct": ref
                        and encrypt_field("subjects", public_id, "external_ref", ref),
                        "external_ref_index": ref and ref_index(scope, ref),
                        "source": rng.choice(SOURCES),
                        "created_at": now,
                        "updated_at": now,
                        "name_ct": name_ct,
                        "email_ct": email_ct,
                        "key_id": key_id,
                        "email_index": inventory.email_index(scope, email),
                        "email_hash_index": inventory.hash_index(
                            account, inventory.email_hash(email)
                        ),
                    }
                )
                held.append(rng.sample(systems, k=rng.choice((0, 1, 1, 2, 3))))
            ids = bulk_insert(Subject.__table__, rows, return_ids=True)
            holdings = [
                {"account_id": account.id, "subject_id": subject_id, "system_id": system.id}
                for subject_id, systems_held in zip(ids, held, strict=True)
                for system in systems_held
            ]
            bulk_insert(Holding.__table__, holdings)
            db.session.commit()
            done = min(start + SEED_CHUNK, total)
            if done % 100_000 == 0 or done == total:
                print(f"  seeded {done:,} subjects", file=sys.stderr, flush=True)
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        counts = {
            table: db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: S608
            for table in ("subjects", "holdings")
        }
        size = db.session.execute(text("SELECT pg_database_size(current_database())")).scalar()
        db.engine.dispose()
    return {"counts": counts, "database_bytes": size}


def step_backup(config: dict) -> dict:
    from privacy.backups import services
    from privacy.backups import stream

    plain = 0
    real_encrypt = stream.encrypt

    def counting(chunks, **kwargs):
        def counted():
            nonlocal plain
            for chunk in chunks:
                plain += len(chunk)
                yield chunk

        return real_encrypt(counted(), **kwargs)

    stream.encrypt = counting  # counts the dump as it streams by; no copy, no buffering
    app = _app(config)
    with app.app_context():
        started = time.monotonic()
        run = services.run_backup(trigger="benchmark")
        seconds = time.monotonic() - started
        if run.status != "succeeded":
            raise BenchmarkError(f"run_backup failed: {run.reason}")
        result = {"id": run.key, "seconds": seconds, "dump_bytes": plain, "backup_bytes": run.size}
    return result | _usage()


def step_restore(config: dict) -> dict:
    from privacy.backups import services

    app = _app(config)
    with app.app_context():
        started = time.monotonic()
        result = services.restore(config["backup_id"], target=config["target"], actor="benchmark")
        seconds = time.monotonic() - started
    return {"seconds": seconds, "replayed": result["replayed_erasures"]} | _usage()


STEPS = {"seed": step_seed, "backup": step_backup, "restore": step_restore}


@dataclass
class Figures:
    """One measured step: its time, output size and memory."""

    step: str
    seconds: float
    file_bytes: int | None
    memory: Sampler
    python_kb: int = 0  # ru_maxrss of the step's Python process, when it has one

    @property
    def child_kb(self) -> int:
        """The largest high-water mark among the programs it ran (pg_dump, gzip, ...)."""
        others = [kb for name, kb in self.memory.hwm_kb.items() if name not in PARENTS]
        return max(others, default=0)

    @property
    def peak_mb(self) -> float:
        """Python's and the largest child's high-water marks added up: a bound that a
        spike between two samples cannot escape."""
        python = max(self.python_kb, self.memory.hwm_kb.get("python", 0))
        return (python + self.child_kb) / 1024


PARENTS = {"python", "bash"}


def run_step(name: str, config: dict, env: dict[str, str]) -> tuple[dict, Figures]:
    """Run a step in a fresh interpreter: its JSON result, and its figures."""
    seconds, memory, out = measured(
        [sys.executable, __file__, "--step", name, json.dumps(config)], env, name
    )
    result = json.loads(out.strip().splitlines()[-1])
    figures = Figures(
        name,
        result.get("seconds", seconds),
        result.get("backup_bytes"),
        memory,
        python_kb=result.get("self_maxrss_kb", 0),
    )
    return result, figures


def shell(step: str, command: str, env: dict[str, str], output: Path | None = None) -> Figures:
    seconds, memory, _ = measured(["bash", "-o", "pipefail", "-c", command], env, step)
    return Figures(step, seconds, output.stat().st_size if output else None, memory)


# The run ----------------------------------------------------------------------------------


def start_moto(folder: Path, env: dict[str, str], cleanup: ExitStack) -> str:
    """moto's S3 server as a process of its own (it keeps objects in its memory, not ours)."""
    import boto3

    port = free_port()
    log = (folder / "moto.log").open("wb")
    cleanup.callback(log.close)
    server = subprocess.Popen(  # noqa: S603 - fixed command
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    cleanup.callback(lambda: (server.terminate(), server.wait(10)))
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(
                Bucket=MOTO_BUCKET,
                CreateBucketConfiguration={"LocationConstraint": AWS_ENV["AWS_DEFAULT_REGION"]},
            )
            return endpoint
        except Exception:  # noqa: BLE001 - not listening yet
            if time.monotonic() > deadline or server.poll() is not None:
                raise BenchmarkError("moto_server did not start") from None
            time.sleep(0.2)


def mb(size: int) -> float:
    return size / MB


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()[0]
    with ExitStack() as cleanup:
        folder = Path(tempfile.mkdtemp(prefix="privacy-bench-backups-", dir=args.work_dir))
        cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        # The app's own PRIVACY_* settings are ignored: a developer's database is never touched.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVACY_")}
        env |= {"PRIVACY_INSTANCE_PATH": str(folder / "instance"), "PYTHONUNBUFFERED": "1"}
        env |= AWS_ENV
        databases = {}
        for role in ("live", "restored", "plain"):
            name, url = create_pg_database(args.pg_url)
            cleanup.callback(drop_pg_database, args.pg_url, name)
            databases[role] = url
        config = {"database": databases["live"], "backup_url": f"file://{folder / 'backups'}"}
        where = "a local folder"
        if args.s3:
            config["s3_endpoint"] = start_moto(folder, env, cleanup)
            config["backup_url"] = f"s3://{MOTO_BUCKET}/bench"
            where = "S3 (moto_server over HTTP, loopback)"

        note(f"seeding {args.subjects:,} subjects")
        seeded, seeding = run_step(
            "seed", config | {"subjects": args.subjects, "seed": args.seed}, env
        )
        note(f"  seeded in {seeding.seconds:.0f} s")
        # Dirty pages of the seed must not slow whichever dump comes first.
        subprocess.run(  # noqa: S603 - fixed command
            ["psql", "-q", "-c", "CHECKPOINT", _libpq_url(databases["live"])],
            check=True,
            env=env,
        )

        dump_file = folder / "plain.dump.gz"
        live = shlex.quote(_libpq_url(databases["live"]))
        plains, backups = [], []
        for round_ in range(1, args.rounds + 1):
            note(f"round {round_}: plain pg_dump --format=custom | gzip")
            plains.append(
                shell(
                    "plain pg_dump -Fc | gzip > file",
                    f"pg_dump --format=custom --dbname={live} | gzip > "
                    f"{shlex.quote(str(dump_file))}",
                    env,
                    dump_file,
                )
            )
            note(f"round {round_}: run_backup into {where}")
            backup, figures = run_step("backup", config, env)
            figures.step = "run_backup"
            backups.append((backup, figures))
        backup = backups[-1][0]
        dump = backup["dump_bytes"]

        note("restore")
        restore_config = config | {"backup_id": backup["id"], "target": databases["restored"]}
        _restore, restoring = run_step("restore", restore_config, env)
        restoring.step = "restore (fetch, verify, pg_restore)"
        note("plain gunzip | pg_restore")
        plain_restoring = shell(
            "plain gunzip | pg_restore",
            f"gunzip -c {shlex.quote(str(dump_file))} | pg_restore --no-owner "
            f"--no-privileges --exit-on-error "
            f"--dbname={shlex.quote(_libpq_url(databases['plain']))}",
            env,
        )

    plain_best = min(f.seconds for f in plains)
    backup_best = min(f.seconds for _b, f in backups)
    ratio = plain_best / backup_best  # throughputs over the same dump
    backup_peak = max(f.peak_mb for _b, f in backups)
    pg_dump_version = subprocess.run(
        ["pg_dump", "--version"], capture_output=True, text=True
    ).stdout.split()[2]

    print()
    print(
        f"Backup benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, PostgreSQL "
        f"{pg_server_version(args.pg_url)}, pg_dump {pg_dump_version}; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print(f"code: {code_version()}")
    print(f"command: {args.command}")
    print(
        f"data: {seeded['counts']['subjects']:,} subjects, {seeded['counts']['holdings']:,} "
        f"holdings; database {mb(seeded['database_bytes']):,.0f} MB; uncompressed dump "
        f"{mb(dump):,.0f} MB; seeded in {seeding.seconds:.0f} s; backups to {where}"
    )
    print()
    header = (
        f"{'step':<36} {'seconds':>8} {'MB/s':>7} {'file MB':>8} {'python MB':>9} "
        f"{'child MB':>8} {'tree MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for figures in [*plains, *(f for _b, f in backups), restoring, plain_restoring]:
        python = max(figures.python_kb, figures.memory.hwm_kb.get("python", 0))
        print(
            f"{figures.step:<36} {figures.seconds:>8.1f} {mb(dump) / figures.seconds:>7.1f} "
            f"{f'{mb(figures.file_bytes):.0f}' if figures.file_bytes else '-':>8} "
            f"{f'{python / 1024:.0f}' if python else '-':>9} {figures.child_kb / 1024:>8.0f} "
            f"{figures.memory.peak_kb / 1024:>8.0f}"
        )
    print()
    print(
        f"backup throughput {mb(dump) / backup_best:.1f} MB/s = {ratio:.2f} x plain "
        f"{mb(dump) / plain_best:.1f} MB/s (target >= {THROUGHPUT_TARGET} x): "
        f"{verdict(ratio >= THROUGHPUT_TARGET)}"
    )
    print(
        f"backup peak memory {backup_peak:.0f} MB (target < {MEMORY_TARGET_MB:.0f} MB): "
        f"{verdict(backup_peak < MEMORY_TARGET_MB)}"
    )
    print(
        f"restore {mb(dump) / restoring.seconds:.1f} MB/s, peak memory "
        f"{restoring.peak_mb:.0f} MB (target < {MEMORY_TARGET_MB:.0f} MB): "
        f"{verdict(restoring.peak_mb < MEMORY_TARGET_MB)}"
    )
    print()
    print(
        "MB/s: uncompressed dump MB (pg_dump custom format, no compression) per second, the "
        "same yardstick for every step. Best of the rounds for the target."
    )
    print(
        "run_backup and restore are timed inside their process (without interpreter start "
        "and app set-up)."
    )
    print(
        "python MB, child MB: high-water RSS of the step's Python process and of its largest "
        "child (pg_dump, pg_restore, gzip); peak memory = their sum. tree MB: the largest "
        "summed RSS of the whole process tree, sampled every 20 ms."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help="PostgreSQL server to create the throw-away databases on (default: %(default)s)",
    )
    parser.add_argument("--s3", action="store_true", help="back up to a moto S3 server process")
    parser.add_argument(
        "--rounds", type=int, default=2, help="plain and our backup, alternately (default 2)"
    )
    parser.add_argument("--work-dir", default=None, help="folder for dump files (default: tmp)")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("config", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        print(json.dumps(STEPS[args.step](json.loads(args.config))))
        return 0
    if args.subjects < 1 or args.rounds < 1:
        parser.error("--subjects and --rounds must be >= 1")
    # SIGTERM unwinds like Ctrl-C, so the cleanup (databases, folders, moto) still runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    args.command = shlex.join(
        [
            os.path.relpath(sys.executable, Path.cwd())
            if Path(sys.executable).is_relative_to(Path.cwd())
            else sys.executable,
            os.path.relpath(__file__, Path.cwd()),
            *sys.argv[1:],
        ]
    )
    try:
        return bench(args)
    except (BenchmarkError, OSError, subprocess.SubprocessError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
