"""Object storage: the same behaviour from local files and from S3 over HTTP (moto server)."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from celery import current_app as current_celery_app
from moto.server import ThreadedMotoServer

from privacy import create_app
from privacy import storage
from privacy.storage import FileStorage
from privacy.storage import ObjectNotFound
from privacy.storage import S3Storage
from privacy.storage import StorageError
from tests.conftest import app_config

BUCKET = "privacy-test"
REGION = "eu-central-1"
MB = 1024 * 1024


class GeneratedStream(io.RawIOBase):
    """A non-seekable stream of `size` pseudo-random bytes produced on demand.

    Records the largest read so a test can prove the consumer streamed it in chunks, and the
    SHA-256 of everything handed out so the stored copy can be compared without keeping it.
    """

    def __init__(self, size: int, fail_after: int | None = None) -> None:
        self.remaining = size
        self.fail_after = fail_after
        self.served = 0
        self.largest_read = 0
        self.unbounded_reads = 0
        self.sha256 = hashlib.sha256()
        self._pattern = os.urandom(MB + 7)  # odd length: chunks never line up with the pattern
        self._offset = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            self.unbounded_reads += 1
            size = self.remaining
        if self.fail_after is not None and self.served >= self.fail_after:
            raise OSError("source went away")
        size = min(size, self.remaining)
        self.largest_read = max(self.largest_read, size)
        out = bytearray()
        while len(out) < size:
            piece = self._pattern[self._offset : self._offset + size - len(out)]
            out += piece
            self._offset = (self._offset + len(piece)) % len(self._pattern)
        self.remaining -= size
        self.served += size
        self.sha256.update(out)
        return bytes(out)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def aws_env() -> Iterator[None]:
    """Dummy credentials only: nothing here may ever reach real AWS."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        yield


@pytest.fixture(scope="session")
def moto_endpoint(aws_env) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield endpoint
    server.stop()


@pytest.fixture
def s3_client(moto_endpoint):
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)


def make_s3(moto_endpoint: str, **options) -> S3Storage:
    # A fresh prefix per test keeps tests independent inside the one session bucket.
    return S3Storage(
        BUCKET, f"t-{uuid.uuid4().hex}", endpoint_url=moto_endpoint, region=REGION, **options
    )


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.integration)])
def store(request, tmp_path) -> storage.Storage:
    if request.param == "file":
        return FileStorage(tmp_path / "store")
    return make_s3(request.getfixturevalue("moto_endpoint"))


def read_stream_sha256(stream) -> str:
    digest = hashlib.sha256()
    with stream:
        while chunk := stream.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


# --- behaviour shared by every backend -------------------------------------------------------


def test_bytes_round_trip(store):
    store.put("exports/abc/package.zip", b"\x00binary\xffdata", content_type="application/zip")

    assert store.get("exports/abc/package.zip") == b"\x00binary\xffdata"
    assert store.size("exports/abc/package.zip") == len(b"\x00binary\xffdata")
    assert store.exists("exports/abc/package.zip")
    with store.open("exports/abc/package.zip") as fh:
        assert fh.read() == b"\x00binary\xffdata"


def test_put_replaces_an_existing_object(store):
    store.put("doc.pdf", b"first version")
    store.put("doc.pdf", b"second")

    assert store.get("doc.pdf") == b"second"
    assert store.size("doc.pdf") == 6


def test_small_file_like_object_is_stored(store):
    store.put("small.txt", io.BytesIO(b"hello"), content_type="text/plain")

    assert store.get("small.txt") == b"hello"


def test_large_stream_is_uploaded_in_bounded_chunks(store):
    source = GeneratedStream(20 * MB + 123)

    store.put("backups/db.dump", source)

    assert source.remaining == 0
    assert source.unbounded_reads == 0
    assert source.largest_read <= 16 * MB
    assert store.size("backups/db.dump") == 20 * MB + 123
    assert read_stream_sha256(store.open("backups/db.dump")) == source.sha256.hexdigest()


def test_failed_stream_leaves_the_previous_object_intact(store):
    store.put("backups/db.dump", b"previous backup")

    with pytest.raises(OSError, match="source went away"):
        store.put("backups/db.dump", GeneratedStream(20 * MB, fail_after=9 * MB))

    assert store.get("backups/db.dump") == b"previous backup"
    assert list(store.list()) == ["backups/db.dump"]


def test_list_yields_keys_under_a_prefix_relative_to_the_root(store):
    for key in ("a/1", "a/2", "a/x/y", "ab/3", "b/4"):
        store.put(key, b"x")

    assert list(store.list("a/")) == ["a/1", "a/2", "a/x/y"]
    assert list(store.list("a")) == ["a/1", "a/2", "a/x/y", "ab/3"]
    assert list(store.list()) == ["a/1", "a/2", "a/x/y", "ab/3", "b/4"]
    assert list(store.list("nothing/")) == []


def test_delete_removes_the_object_and_ignores_missing_ones(store):
    store.put("subjects/42/letter.pdf", b"x")
    store.put("subjects/42/other.pdf", b"y")

    store.delete("subjects/42/letter.pdf")
    store.delete("subjects/42/letter.pdf")
    store.delete("never/existed")

    assert not store.exists("subjects/42/letter.pdf")
    assert list(store.list()) == ["subjects/42/other.pdf"]


def test_missing_objects_raise_object_not_found(store):
    with pytest.raises(ObjectNotFound):
        store.get("missing.pdf")
    with pytest.raises(ObjectNotFound):
        store.open("missing.pdf")
    with pytest.raises(ObjectNotFound):
        store.size("missing.pdf")
    assert store.exists("missing.pdf") is False
    assert issubclass(ObjectNotFound, StorageError)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../outside",
        "a/../../b",
        "a/..",
        "a\\b",
        "a//b",
        "./a",
        "a/",
        "a\x00b",
        "x" * 1025,
    ],
)
def test_unsafe_keys_are_refused(store, key):
    with pytest.raises(ValueError):
        store.put(key, b"x")
    with pytest.raises(ValueError):
        store.get(key)
    with pytest.raises(ValueError):
        store.delete(key)
    with pytest.raises(ValueError):
        store.exists(key)


def test_unsafe_list_prefix_is_refused_before_iterating(store):
    with pytest.raises(ValueError):
        store.list("../")
    with pytest.raises(ValueError):
        store.list("/abs")


def test_check_passes_for_a_usable_backend(store):
    store.check()


# --- local files -----------------------------------------------------------------------------


def test_file_storage_writes_owner_only_files_without_leftovers(tmp_path):
    store = FileStorage(tmp_path / "store")

    store.put("exports/abc/package.zip", b"data")
    store.put("exports/abc/package.zip", io.BytesIO(b"data2"))

    path = tmp_path / "store" / "exports" / "abc" / "package.zip"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "store" / "exports").stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["package.zip"]


def test_file_storage_delete_removes_emptied_folders(tmp_path):
    store = FileStorage(tmp_path / "store")
    store.put("subjects/42/letter.pdf", b"x")

    store.delete("subjects/42/letter.pdf")

    assert (tmp_path / "store").is_dir()
    assert list((tmp_path / "store").iterdir()) == []


def test_file_storage_check_fails_when_root_cannot_be_created(tmp_path):
    (tmp_path / "a-file").write_bytes(b"")

    with pytest.raises(StorageError):
        FileStorage(tmp_path / "a-file" / "store").check()


# --- S3 --------------------------------------------------------------------------------------


@pytest.mark.integration
def test_s3_large_stream_is_a_multipart_upload(moto_endpoint, s3_client):
    store = make_s3(moto_endpoint)

    store.put("backups/db.dump", GeneratedStream(20 * MB))

    head = s3_client.head_object(Bucket=BUCKET, Key=f"{store.prefix}backups/db.dump")
    # A multipart object's ETag is "<md5 of part md5s>-<number of parts>".
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ServerSideEncryption"] == "AES256"


@pytest.mark.integration
def test_s3_every_put_is_server_side_encrypted(moto_endpoint, s3_client):
    store = make_s3(moto_endpoint)

    store.put("a.pdf", b"x", content_type="application/pdf")
    store.put("b.txt", io.BytesIO(b"y"))

    for key in ("a.pdf", "b.txt"):
        head = s3_client.head_object(Bucket=BUCKET, Key=store.prefix + key)
        assert head["ServerSideEncryption"] == "AES256"
    head = s3_client.head_object(Bucket=BUCKET, Key=store.prefix + "a.pdf")
    assert head["ContentType"] == "application/pdf"


@pytest.mark.integration
def test_s3_kms_encryption_names_the_key(moto_endpoint, s3_client):
    key_id = "arn:aws:kms:eu-central-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    store = make_s3(moto_endpoint, sse="aws:kms", kms_key_id=key_id)

    store.put("a.pdf", b"x")

    head = s3_client.head_object(Bucket=BUCKET, Key=store.prefix + "a.pdf")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_id


@pytest.mark.integration
def test_s3_keys_live_under_the_prefix(moto_endpoint, s3_client):
    store = make_s3(moto_endpoint)

    store.put("k", b"x")

    listed = s3_client.list_objects_v2(Bucket=BUCKET, Prefix=store.prefix)
    assert [item["Key"] for item in listed["Contents"]] == [store.prefix + "k"]


@pytest.mark.integration
def test_s3_list_follows_pagination(moto_endpoint, s3_client):
    store = make_s3(moto_endpoint)
    store.list_page_size = 2
    names = [f"k/{i}" for i in range(5)]
    for name in names:
        store.put(name, b"")

    assert list(store.list("k/")) == names


def test_s3_refuses_unknown_encryption():
    with pytest.raises(ValueError):
        S3Storage(BUCKET, sse="none")


@pytest.mark.integration
def test_s3_check_fails_for_a_missing_bucket(moto_endpoint):
    store = S3Storage("no-such-bucket", endpoint_url=moto_endpoint, region=REGION)

    with pytest.raises(StorageError):
        store.check()


@pytest.mark.integration
def test_s3_check_fails_fast_when_the_endpoint_is_unreachable(aws_env):
    store = S3Storage(BUCKET, endpoint_url=f"http://127.0.0.1:{free_port()}", region=REGION)

    started = time.monotonic()
    with pytest.raises(StorageError):
        store.check()

    assert time.monotonic() - started < 5


@pytest.mark.integration
def test_s3_unreachable_endpoint_is_a_storage_error_for_data_calls(aws_env):
    store = S3Storage(BUCKET, endpoint_url=f"http://127.0.0.1:{free_port()}", region=REGION)

    with pytest.raises(StorageError) as excinfo:
        store.get("k")

    assert not isinstance(excinfo.value, ObjectNotFound)


# --- construction from configuration ---------------------------------------------------------


def test_from_url_builds_file_storage(tmp_path):
    built = storage.from_url(f"file://{tmp_path}/store")

    assert isinstance(built, FileStorage)
    assert built.root == tmp_path / "store"


def test_from_url_builds_s3_storage_with_options(aws_env):
    built = storage.from_url(
        "s3://bucket/some/prefix/", endpoint_url="http://127.0.0.1:9", region=REGION, sse=None
    )

    assert isinstance(built, S3Storage)
    assert (built.bucket, built.prefix, built.sse) == ("bucket", "some/prefix/", "AES256")
    assert built.endpoint_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("url", ["file://relative/path", "ftp://host/x", "/just/a/path", ""])
def test_from_url_refuses_other_urls(url):
    with pytest.raises(ValueError):
        storage.from_url(url)


@pytest.fixture
def restore_celery_app():
    """create_app() makes its Celery app current; give the session's back afterwards."""
    previous = current_celery_app._get_current_object()
    yield
    previous.set_current()
    previous.set_default()


@pytest.mark.integration
def test_get_builds_the_configured_s3_storage_once(moto_endpoint, s3_client, restore_celery_app):
    app = create_app(
        app_config(
            STORAGE_URL=f"s3://{BUCKET}/from-app", S3_ENDPOINT_URL=moto_endpoint, S3_REGION=REGION
        )
    )

    with app.app_context():
        store = storage.get()
        assert storage.get() is store
        store.put("probe.txt", b"via config")
        store.check()

    assert isinstance(store, S3Storage)
    body = s3_client.get_object(Bucket=BUCKET, Key="from-app/probe.txt")["Body"].read()
    assert body == b"via config"


def test_get_builds_file_storage_from_the_default_config(tmp_path, restore_celery_app):
    app = create_app(app_config(STORAGE_URL=f"file://{tmp_path}/files"))

    with app.app_context():
        storage.get().put("x", b"y")

    assert (tmp_path / "files" / "x").read_bytes() == b"y"
    assert isinstance(app.extensions["storage"], FileStorage)
    assert Path(app.extensions["storage"].root) == tmp_path / "files"
