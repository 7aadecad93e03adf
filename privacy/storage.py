"""Object storage (local files or S3) for documents, access packages and backups."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from abc import ABC
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote
from urllib.parse import urlsplit

from flask import current_app

from privacy import files

logger = logging.getLogger(__name__)

COPY_CHUNK = 1024 * 1024
MULTIPART_CHUNK = 8 * 1024 * 1024
MAX_KEY_BYTES = 1024
SSE_MODES = frozenset({"AES256", "aws:kms"})
_TEMP_PREFIX = ".~tmp-"
_TEMP_SUFFIX = ".part"


class StorageError(Exception):
    """The storage backend failed or cannot be reached; the message names no key."""


class ObjectNotFound(StorageError):
    """No object exists under the requested key."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative object key, else raise ValueError.

    Keys map to file paths and S3 object names alike, so anything that would mean something
    different on the two backends (absolute paths, `..`, `.`, empty segments, backslashes,
    control characters) is refused. The message never repeats the key: keys may hold ids.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("storage key must be a non-empty string")
    if key.startswith("/"):
        raise ValueError("storage key must be relative (no leading '/')")
    if "\\" in key:
        raise ValueError("storage key must not contain backslashes")
    if _CONTROL.search(key):
        raise ValueError("storage key must not contain control characters")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"storage key must be at most {MAX_KEY_BYTES} bytes")
    if any(part in {"", ".", ".."} for part in key.split("/")):
        raise ValueError("storage key must not contain '..', '.' or empty path segments")
    return key


def _validate_prefix(prefix: str) -> str:
    """A listing prefix may be empty or end in '/', otherwise it follows the key rules."""
    if prefix == "":
        return prefix
    validate_key(prefix.removesuffix("/"))
    return prefix


class Storage(ABC):
    """Objects under string keys. Every backend raises ObjectNotFound / StorageError only."""

    @abstractmethod
    def put(
        self,
        key: str,
        data: bytes | BinaryIO,
        *,
        content_type: str = "application/octet-stream",
    ) -> None:
        """Store `data` under `key`, replacing any object there.

        A file-like `data` is streamed in chunks (S3: multipart above 8 MB), never read whole.
        Readers never see a partly written object.
        """

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object; ObjectNotFound if missing. Use open() for large objects."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A binary stream of the object for reading; the caller closes it."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with `prefix`, relative to the storage root, in key order."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Object size in bytes; ObjectNotFound if missing."""

    @abstractmethod
    def check(self) -> None:
        """Return if the backend is usable, raise StorageError quickly otherwise (readiness)."""


class FileStorage(Storage):
    """Objects as files under `root`: atomic replace, owner-only permissions (0700 / 0600).

    Files carry no metadata, so `content_type` is accepted for the interface and dropped.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"FileStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _make_dirs(self, directory: Path) -> None:
        files.private_dirs(directory)

    def _temp_file(self, folder: Path) -> tuple[int, str]:
        # mkstemp creates the file 0600; same folder so os.replace is an atomic rename.
        # A concurrent delete() may remove the emptied folder in between: create it again.
        for _attempt in range(3):
            self._make_dirs(folder)
            try:
                return tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=folder)
            except FileNotFoundError:
                continue
        raise StorageError("file storage put failed: folder keeps disappearing")

    def put(
        self,
        key: str,
        data: bytes | BinaryIO,
        *,
        content_type: str = "application/octet-stream",
    ) -> None:
        path = self._path(key)
        with _file_errors("put", reading=False):
            fd, tmp_name = self._temp_file(path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                if isinstance(data, bytes | bytearray | memoryview):
                    with _file_errors("put", reading=False):
                        fh.write(data)
                else:
                    # Errors reading the caller's stream propagate unchanged, as with S3.
                    while chunk := data.read(COPY_CHUNK):
                        with _file_errors("put", reading=False):
                            fh.write(chunk)
                with _file_errors("put", reading=False):
                    fh.flush()
                    os.fsync(fh.fileno())
            with _file_errors("put", reading=False):
                os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise

    def get(self, key: str) -> bytes:
        path = self._path(key)
        with _file_errors("get"):
            return path.read_bytes()

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        with _file_errors("open"):
            return path.open("rb")

    def delete(self, key: str) -> None:
        path = self._path(key)
        with _file_errors("delete"):
            path.unlink(missing_ok=True)
        # Tidy empty folders so the tree does not keep the shape of erased data.
        folder = path.parent
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[str]:
        return self._list(_validate_prefix(prefix))

    def _list(self, prefix: str) -> Iterator[str]:
        folder, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        keys = []
        with _file_errors("list", reading=False):
            for dirpath, _dirnames, filenames in os.walk(start):
                relative = Path(dirpath).relative_to(self.root).as_posix()
                for name in filenames:
                    if name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX):
                        continue
                    key = name if relative == "." else f"{relative}/{name}"
                    if key.startswith(prefix):
                        keys.append(key)
        yield from sorted(keys)

    def size(self, key: str) -> int:
        path = self._path(key)
        with _file_errors("size"):
            if not path.is_file():
                raise FileNotFoundError
            return path.stat().st_size

    def check(self) -> None:
        with _file_errors("check", reading=False):
            self._make_dirs(self.root)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise PermissionError("storage root is not writable")


@contextlib.contextmanager
def _file_errors(operation: str, *, reading: bool = True) -> Iterator[None]:
    """Map OSError to StorageError; a missing file is ObjectNotFound when reading an object."""
    try:
        yield
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        if reading:
            raise ObjectNotFound(f"file storage {operation}: no such object") from exc
        logger.warning("file storage %s failed: %s", operation, type(exc).__name__)
        raise StorageError(f"file storage {operation} failed: {type(exc).__name__}") from exc
    except OSError as exc:
        logger.warning("file storage %s failed: %s", operation, type(exc).__name__)
        raise StorageError(f"file storage {operation} failed: {type(exc).__name__}") from exc


class S3Storage(Storage):
    """Objects in an S3 bucket under `prefix`, always server-side encrypted.

    Timeouts and retries are bounded so a dead endpoint fails a request in seconds rather
    than hanging a worker; check() uses a single attempt so /readyz answers quickly.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        sse: str = "AES256",
        kms_key_id: str | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("S3 bucket name is required")
        if sse not in SSE_MODES:
            raise ValueError(f"S3 server-side encryption must be one of {sorted(SSE_MODES)}")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.sse = sse
        self.kms_key_id = kms_key_id
        self.list_page_size = 1000
        self._client = self._make_client(connect_timeout=5, read_timeout=60, attempts=4)
        self._probe = None

    def __repr__(self) -> str:
        return f"S3Storage({self.bucket!r}, {self.prefix!r}, endpoint_url={self.endpoint_url!r})"

    def _make_client(self, *, connect_timeout: float, read_timeout: float, attempts: int):
        # Imported on first use, not above: starting the app must not import boto3.
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": attempts, "mode": "standard"},
            # S3-compatible servers (MinIO, Ceph, moto) rarely have wildcard DNS for buckets.
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
        )
        session = boto3.session.Session()
        return session.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
        )

    def _key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _encryption(self) -> dict[str, str]:
        args = {"ServerSideEncryption": self.sse}
        if self.sse == "aws:kms" and self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args

    def put(
        self,
        key: str,
        data: bytes | BinaryIO,
        *,
        content_type: str = "application/octet-stream",
    ) -> None:
        name = self._key(key)
        extra = {"ContentType": content_type, **self._encryption()}
        with _s3_errors("put"):
            if isinstance(data, bytes | bytearray | memoryview):
                self._client.put_object(Bucket=self.bucket, Key=name, Body=bytes(data), **extra)
            else:
                self._client.upload_fileobj(
                    data, self.bucket, name, ExtraArgs=extra, Config=_transfer_config()
                )

    def get(self, key: str) -> bytes:
        name = self._key(key)
        with _s3_errors("get"):
            body = self._client.get_object(Bucket=self.bucket, Key=name)["Body"]
            try:
                return body.read()
            finally:
                body.close()

    def open(self, key: str) -> BinaryIO:
        name = self._key(key)
        with _s3_errors("open"):
            return self._client.get_object(Bucket=self.bucket, Key=name)["Body"]

    def delete(self, key: str) -> None:
        name = self._key(key)
        with _s3_errors("delete"):
            self._client.delete_object(Bucket=self.bucket, Key=name)

    def exists(self, key: str) -> bool:
        # Without s3:ListBucket, S3 answers 403 for a missing key: that is a StorageError.
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        return self._list(_validate_prefix(prefix))

    def _list(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        with _s3_errors("list"):
            pages = paginator.paginate(
                Bucket=self.bucket,
                Prefix=self.prefix + prefix,
                PaginationConfig={"PageSize": self.list_page_size},
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    yield item["Key"][len(self.prefix) :]

    def size(self, key: str) -> int:
        name = self._key(key)
        with _s3_errors("size"):
            return self._client.head_object(Bucket=self.bucket, Key=name)["ContentLength"]

    def check(self) -> None:
        if self._probe is None:
            self._probe = self._make_client(connect_timeout=2, read_timeout=5, attempts=1)
        with _s3_errors("check"):
            self._probe.head_bucket(Bucket=self.bucket)


def _transfer_config():
    # Imported on first use, not above: starting the app must not import boto3.
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=MULTIPART_CHUNK,
        multipart_chunksize=MULTIPART_CHUNK,
        max_concurrency=4,
        preferred_transfer_client="classic",
    )
    # Non-seekable streams are buffered part by part; cap it so a backup of any size
    # costs at most a few parts of memory (s3transfer's default is 10 parts).
    config.max_in_memory_upload_chunks = 4
    return config


_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


@contextlib.contextmanager
def _s3_errors(operation: str) -> Iterator[None]:
    # Imported on first use, not above: starting the app must not import boto3.
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
        if code in _NOT_FOUND_CODES and operation != "check":
            raise ObjectNotFound(f"s3 {operation}: no such object") from exc
        logger.warning("s3 %s failed: %s %s", operation, type(exc).__name__, code)
        raise StorageError(f"s3 {operation} failed: {code}") from exc
    except (BotoCoreError, Boto3Error) as exc:
        logger.warning("s3 %s failed: %s", operation, type(exc).__name__)
        raise StorageError(f"s3 {operation} failed: {type(exc).__name__}") from exc


def from_url(url: str, **s3_options) -> Storage:
    """Build a backend from `file:///absolute/path` or `s3://bucket/prefix`.

    `s3_options` (endpoint_url, region, sse, kms_key_id) go to S3Storage; None values are
    dropped so the defaults apply.
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in {"", "localhost"} or not parts.path.startswith("/"):
            raise ValueError("file storage URL must be absolute: file:///path/to/folder")
        return FileStorage(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        options = {name: value for name, value in s3_options.items() if value is not None}
        return S3Storage(parts.netloc, unquote(parts.path), **options)
    raise ValueError("storage URL must start with file:// or s3://")


def get() -> Storage:
    """The current app's storage, built from its config on first use and cached."""
    app = current_app._get_current_object()
    storage = app.extensions.get("storage")
    if storage is None:
        config = app.config
        storage = from_url(
            config["STORAGE_URL"],
            endpoint_url=config.get("S3_ENDPOINT_URL"),
            region=config.get("S3_REGION"),
            sse=config.get("S3_SSE"),
            kms_key_id=config.get("S3_KMS_KEY_ID"),
        )
        app.extensions["storage"] = storage
    return storage
