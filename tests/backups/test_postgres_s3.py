"""Backups with the real parts: PostgreSQL (pg_dump and pg_restore) and S3 through moto's
server over HTTP. Each test gets throwaway databases on the PostgreSQL server on loopback
(or the one PRIVACY_TEST_DATABASE_URL names), dropped at the end. Without that server the
tests are skipped, except under CI, where they fail."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import uuid
from datetime import timedelta

import boto3
import pytest
from flask_migrate import upgrade
from moto.server import ThreadedMotoServer
from sqlalchemy import create_engine
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.engine import make_url

from privacy import create_app
from privacy import database
from privacy.audit import services as audit
from privacy.audit.models import AuditEvent
from privacy.backups import services
from privacy.backups import stream
from privacy.backups.models import BackupRun
from privacy.database import utcnow
from privacy.extensions import db
from privacy.inventory import services as inventory
from tests.conftest import app_config
from tests.conftest import database_url
from tests.conftest import make_tenant
from tests.test_storage import REGION
from tests.test_storage import aws_env  # noqa: F401 - fixture
from tests.test_storage import free_port

pytestmark = pytest.mark.integration

KEY = "b1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="  # 32 bytes of "A"
SAME_ID_OTHER_KEY = "b1:" + "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
OTHER_KEY = "b2:" + "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
DATA_BUCKET = "privacy-bk-data"
BACKUP_BUCKET = "privacy-bk-backups"
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MB = 1024 * 1024


# -- the parts ---------------------------------------------------------------------------


def server_url() -> str:
    """The PostgreSQL server to create throwaway databases on (its maintenance database)."""
    configured = database_url()
    if configured.startswith("postgresql"):
        return make_url(configured).set(database="postgres").render_as_string(False)
    return DEFAULT_SERVER


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def pg_server() -> str:
    import psycopg

    url = server_url()
    try:
        with psycopg.connect(libpq(url), connect_timeout=3):
            pass
    except psycopg.Error as exc:
        reason = f"PostgreSQL is unreachable at {make_url(url).host} ({type(exc).__name__})"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI runs a PostgreSQL service for the integration tests")
        pytest.skip(reason)
    return url


def databases(server: str, like: str) -> set[str]:
    import psycopg

    with psycopg.connect(libpq(server), autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (like,))
        return {name for (name,) in rows}


@pytest.fixture
def new_database(pg_server):
    """Creates empty throwaway databases (privacy_bk_<random>); drops them all afterwards."""
    import psycopg

    made: list[str] = []

    def create() -> str:
        name = f"privacy_bk_{secrets.token_hex(5)}"
        with psycopg.connect(libpq(pg_server), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return make_url(pg_server).set(database=name).render_as_string(hide_password=False)

    yield create
    with psycopg.connect(libpq(pg_server), autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def moto_endpoint(aws_env):  # noqa: F811 - aws_env is the fixture imported above
    """moto's S3 server over HTTP on loopback, run as tests/test_storage.py runs it. moto keeps
    its buckets per process, not per server: a bucket made by another module may be there."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def s3(moto_endpoint):
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    for bucket in (DATA_BUCKET, BACKUP_BUCKET):
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
    return client


@pytest.fixture
def live(new_database, moto_endpoint, s3):
    """The service on a fresh migrated PostgreSQL database, its objects and its backups in
    two buckets of moto's S3 server (a prefix of their own per test)."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    app = create_app(
        app_config(
            SQLALCHEMY_DATABASE_URI=new_database(),
            STORAGE_URL=f"s3://{DATA_BUCKET}/{prefix}",
            BACKUP_URL=f"s3://{BACKUP_BUCKET}/{prefix}",
            S3_ENDPOINT_URL=moto_endpoint,
            S3_REGION=REGION,
            BACKUP_KEYS=KEY,
        )
    )
    app.config["TEST_BACKUP_PREFIX"] = f"{prefix}/backups/"
    database.init_migrations(app)
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


def backup_objects(s3, live) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BACKUP_BUCKET, Prefix=live.config["TEST_BACKUP_PREFIX"])
    return [item["Key"] for item in listed.get("Contents", ())]


def add_subject(account, name: str, email: str):
    subject = inventory.create_subject(account, name=name, email=email, actor="t")
    db.session.commit()
    return subject


def erase_by_request(app, tenant, email: str, queue) -> None:
    """An OpenDSR erasure, worked by the worker (the test's queue)."""
    body = {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": "erasure",
        "submitted_time": utcnow().isoformat(),
        "subject_identities": [{"identity_type": "email", "identity_value": email}],
    }
    response = app.test_client().post("/opendsr/v1/requests", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    queue.run()


def scalar(url: str, sql: str):
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def tables(url: str) -> int:
    return scalar(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")


def subject_emails(url: str) -> list[str]:
    """The e-mails in a restored database, decrypted by an app of its own."""
    from privacy.inventory.models import Subject

    restored = create_app(app_config(SQLALCHEMY_DATABASE_URI=url))
    with restored.app_context():
        try:
            return sorted(s.email for s in db.session.scalars(select(Subject)))
        finally:
            db.session.remove()
            db.engine.dispose()


def audited(action: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return list(db.session.scalars(query))


# -- backup ------------------------------------------------------------------------------


def test_a_backup_lands_in_s3_encrypted_with_its_manifest_beside_it(live, s3):
    tenant = make_tenant()
    add_subject(tenant.account, "Zofia Wiśniewska", "zofia@example.pl")
    add_subject(tenant.account, "Jan Nowak", "jan@example.pl")

    run = services.run_backup(trigger="cli", actor=audit.SYSTEM)

    assert run.status == "succeeded", run.reason
    prefix = live.config["TEST_BACKUP_PREFIX"]
    assert backup_objects(s3, live) == [f"{prefix}{run.key}.bak", f"{prefix}{run.key}.json"]
    got = s3.get_object(Bucket=BACKUP_BUCKET, Key=f"{prefix}{run.key}.bak")
    blob = got["Body"].read()
    if "ServerSideEncryption" in got:  # moto reports it; S3 encryption on top of ours
        assert got["ServerSideEncryption"] == "AES256"
    assert blob.startswith(stream.MAGIC)
    for plain in (b"PGDMP", b"CREATE TABLE", b"subjects", b"example.pl"):
        assert plain not in blob
    dump = b"".join(stream.decrypt(io.BytesIO(blob), {"b1": b"A" * 32}))
    assert dump.startswith(b"PGDMP")  # pg_dump's custom format, inside our encryption

    manifest = json.loads(
        s3.get_object(Bucket=BACKUP_BUCKET, Key=f"{prefix}{run.key}.json")["Body"].read()
    )
    assert manifest["sha256"] == hashlib.sha256(blob).hexdigest() == run.sha256
    assert manifest["size"] == len(blob) == run.size
    assert manifest["database"] == "postgresql" and manifest["key_id"] == "b1"
    assert manifest["row_counts"]["subjects"] == 2 and manifest["row_counts"]["accounts"] == 1
    revision = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert manifest["revision"] == revision
    assert [e.object_id for e in audited("backup.succeeded")] == [str(run.public_id)]


def test_a_large_backup_is_streamed_to_s3_in_parts_and_restores_byte_for_byte(
    live, s3, new_database
):
    make_tenant()
    # Random bytes do not compress: the backup passes the 8 MB multipart threshold.
    ballast = os.urandom(12 * MB)
    db.session.execute(text("CREATE TABLE ballast (data bytea)"))
    db.session.execute(text("INSERT INTO ballast VALUES (:a), (:b)"), {"a": ballast, "b": b"x"})
    db.session.commit()

    run = services.run_backup(actor=audit.SYSTEM)

    assert run.status == "succeeded", run.reason
    key = f"{live.config['TEST_BACKUP_PREFIX']}{run.key}.bak"
    etag = s3.head_object(Bucket=BACKUP_BUCKET, Key=key)["ETag"].strip('"')
    # A multipart object's ETag ends in its number of parts; S3 (and moto) refuse parts
    # under 5 MB, so the upload streamed in full parts rather than in one body.
    assert re.search(r"-([2-9]|\d\d+)$", etag), etag
    assert run.size > 12 * MB

    target = new_database()
    services.restore(run.key, target=target, actor="cli")
    digest = scalar(target, "SELECT md5(data) FROM ballast WHERE length(data) > 1")
    assert digest == hashlib.md5(ballast).hexdigest()  # noqa: S324 - a checksum, not security


def test_a_backup_that_dies_midway_leaves_nothing_in_s3(live, s3, monkeypatch):
    make_tenant()
    real_encrypt = stream.encrypt

    def dies(chunks, **kwargs):
        yield from real_encrypt(iter([os.urandom(20 * MB)]), **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stream, "encrypt", dies)
    run = services.run_backup(actor=audit.SYSTEM)

    assert run.status == "failed" and run.reason == "The disk is full."
    assert backup_objects(s3, live) == []
    uploads = s3.list_multipart_uploads(
        Bucket=BACKUP_BUCKET, Prefix=live.config["TEST_BACKUP_PREFIX"]
    )
    assert uploads.get("Uploads", []) == []
    assert services.manifests() == []
    (failed,) = audited("backup.failed")
    assert failed.data == {"reason": "The disk is full."}


# -- restore and the promise -------------------------------------------------------------


def test_erased_subjects_never_come_back_but_ordinary_deletions_do(live, new_database, queue):
    tenant = make_tenant()
    add_subject(tenant.account, "Erik Erased", "erik@example.se")
    karin = add_subject(tenant.account, "Karin Kept", "karin@example.se")
    add_subject(tenant.account, "Lars Left", "lars@example.se")
    run = services.run_backup(actor=audit.SYSTEM)
    assert run.status == "succeeded", run.reason

    erase_by_request(live, tenant, "erik@example.se", queue)
    inventory.delete_subject(tenant.account, karin, actor="t")
    db.session.commit()
    assert scalar(live.config["SQLALCHEMY_DATABASE_URI"], "SELECT count(*) FROM subjects") == 1

    target = new_database()
    result = services.restore(run.key, target=target, actor="test")

    assert result["replayed_erasures"] == 1
    assert subject_emails(target) == ["karin@example.se", "lars@example.se"]
    (event,) = audited("backup.restored")
    assert event.object_id == run.key and event.actor == "test"
    assert event.data["replayed"] == 1
    where = make_url(target)
    assert event.data["target"] == f"postgresql://{where.host}:{where.port}/{where.database}"


def test_restore_refuses_a_non_empty_target_unless_forced(live, new_database):
    tenant = make_tenant()
    add_subject(tenant.account, "Ada Backup", "ada@example.org")
    run = services.run_backup(actor=audit.SYSTEM)
    target = new_database()
    services.restore(run.key, target=target, actor="cli")
    engine = create_engine(target)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM subjects"))
        connection.execute(text("CREATE TABLE scribble (note text)"))
    engine.dispose()

    with pytest.raises(services.BackupError, match="not empty; use --force"):
        services.restore(run.key, target=target, actor="cli")
    assert scalar(target, "SELECT count(*) FROM subjects") == 0  # untouched

    services.restore(run.key, target=target, force=True, actor="cli")
    assert subject_emails(target) == ["ada@example.org"]
    assert [e.data["reason"] for e in audited("backup.restore_failed")] == [
        "The target database is not empty; use --force to replace it."
    ]


def test_a_drill_on_postgresql_passes_in_a_scratch_database_it_drops(
    live, pg_server, monkeypatch, queue
):
    tenant = make_tenant()
    add_subject(tenant.account, "Erik Erased", "erik@example.se")
    add_subject(tenant.account, "Karin Kept", "karin@example.se")
    assert services.run_backup(actor=audit.SYSTEM).status == "succeeded"
    erase_by_request(live, tenant, "erik@example.se", queue)
    scratch_names = []
    real_scratch = services._scratch

    def watched(kind):
        context = real_scratch(kind)
        url = context.__enter__()
        scratch_names.append(make_url(url).database)
        assert make_url(url).database in databases(pg_server, "privacy_drill_%")
        return _Exiting(context, url)

    monkeypatch.setattr(services, "_scratch", watched)
    report = services.drill(actor=audit.SYSTEM)

    assert report.status == "passed", report.checks
    checks = {c["check"]: c for c in report.checks}
    assert checks["checksum and decryption"]["ok"]
    assert checks["rows in subjects"]["actual"] == checks["rows in subjects"]["expected"] == 2
    assert checks["erasures replayed"]["count"] == 1
    assert checks["no erased subject present"]["found"] == 0
    assert report.duration_seconds > 0
    (name,) = scratch_names
    assert name.startswith("privacy_drill_")
    assert name not in databases(pg_server, "privacy_drill_%")  # dropped again
    assert [e.object_id for e in audited("backup.drill_passed")] == [str(report.public_id)]


class _Exiting:
    """Hands out a context manager's value once more and exits it (for the drill's spy)."""

    def __init__(self, context, value):
        self.context, self.value = context, value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return self.context.__exit__(*exc)


# -- the command line --------------------------------------------------------------------


def test_the_cli_end_to_end(live, new_database, monkeypatch):
    tenant = make_tenant()
    add_subject(tenant.account, "Ada Backup", "ada@example.org")
    runner = live.test_cli_runner()

    ran = runner.invoke(args=["backups", "run", "--quiet"])
    assert ran.exit_code == 0, ran.output
    backup_id = ran.stdout.strip()
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", backup_id)
    assert db.session.scalar(select(BackupRun.status).where(BackupRun.key == backup_id)) == (
        "succeeded"
    )

    listed = runner.invoke(args=["backups", "list"])
    assert listed.exit_code == 0
    (line,) = listed.stdout.splitlines()
    entry = json.loads(line)
    assert entry["id"] == backup_id and entry["database"] == "postgresql"
    assert entry["key_id"] == "b1" and entry["rows"] >= 3

    missing = runner.invoke(
        args=["backups", "restore", "20990101T000000Z-abcdef", "--target", new_database()]
    )
    assert missing.exit_code == 1
    assert "There is no backup with id '20990101T000000Z-abcdef'." in missing.output
    assert "Traceback" not in missing.output

    nonsense = runner.invoke(args=["backups", "restore", backup_id, "--target", "db.example"])
    assert nonsense.exit_code == 1 and "not a database URL" in nonsense.output

    target = new_database()
    restored = runner.invoke(args=["backups", "restore", backup_id, "--target", target])
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.stdout) == {"backup": backup_id, "replayed_erasures": 0}
    assert "restore:" in restored.stderr and "MiB/s" in restored.stderr  # progress
    again = runner.invoke(args=["backups", "restore", backup_id, "--target", target, "--quiet"])
    assert again.exit_code == 1 and "use --force" in again.output
    forced = runner.invoke(
        args=["backups", "restore", backup_id, "--target", target, "--force", "--quiet"]
    )
    assert forced.exit_code == 0, forced.output

    holds = runner.invoke(args=["backups", "verify-retention"])
    assert holds.exit_code == 0 and "retention holds" in holds.stdout
    later = utcnow() + timedelta(days=31)
    monkeypatch.setattr(services, "utcnow", lambda: later)
    broken = runner.invoke(args=["backups", "verify-retention"])
    assert broken.exit_code == 1
    assert f"backup {backup_id} is 31 days old (kept 30)" in broken.stdout
    assert services.manifests()  # verify-retention only reports

    rules = json.loads(runner.invoke(args=["backups", "lifecycle"]).stdout)
    assert rules["Rules"][0]["Filter"] == {"Prefix": live.config["TEST_BACKUP_PREFIX"]}


# -- clear messages ----------------------------------------------------------------------


def test_an_unreachable_store_gives_a_clear_message_and_a_failed_run(live, new_database):
    make_tenant()
    run = services.run_backup(actor=audit.SYSTEM)
    live.config["S3_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens
    runner = live.test_cli_runner()

    failed = services.run_backup(actor=audit.SYSTEM)
    assert failed.status == "failed"
    assert failed.reason.startswith("The backup location is unreachable or refused the request")
    assert "EndpointConnectionError" in failed.reason
    assert "Traceback" not in runner.invoke(args=["backups", "run", "--quiet"]).output

    listed = runner.invoke(args=["backups", "list"])
    assert listed.exit_code == 1 and "s3 list failed: EndpointConnectionError" in listed.output
    target = new_database()
    restore = runner.invoke(args=["backups", "restore", run.key, "--target", target])
    assert restore.exit_code == 1
    assert "The backup location is unreachable or refused the request" in restore.output
    assert tables(target) == 0


def test_a_key_ring_without_the_backups_key_gives_a_clear_message(live, new_database):
    make_tenant()
    run = services.run_backup(actor=audit.SYSTEM)
    runner = live.test_cli_runner()
    target = new_database()

    live.config["BACKUP_KEYS"] = OTHER_KEY  # b1 was dropped from the ring
    lacking = runner.invoke(args=["backups", "restore", run.key, "--target", target, "--quiet"])
    assert lacking.exit_code == 1
    assert f"Backup {run.key} was made with backup key 'b1', which is not in" in lacking.output
    assert "PRIVACY_BACKUP_KEYS" in lacking.output

    live.config["BACKUP_KEYS"] = SAME_ID_OTHER_KEY  # b1, but not the key it was
    wrong = runner.invoke(args=["backups", "restore", run.key, "--target", target, "--quiet"])
    assert wrong.exit_code == 1
    assert "Key 'b1' does not open this backup (wrong key)." in wrong.output
    assert tables(target) == 0  # nothing restored
    reasons = [e.data["reason"] for e in audited("backup.restore_failed")]
    assert len(reasons) == 2 and "wrong key" in reasons[1]
