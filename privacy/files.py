"""Files on local disk that may hold personal data: folders 0700, files 0600, whatever the
process's umask (the embedded database, object storage, outbox, broker and backups)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sqlalchemy.engine import make_url


def private_dirs(folder: Path | str) -> Path:
    """Create `folder` and its missing parents with mode 0700; return it.

    (Path.mkdir(parents=True) would create the parents with the umask's mode.)
    """
    folder = Path(folder)
    missing = []
    probe = folder
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):
            level.mkdir(mode=0o700)
    return folder


def open_private(path: Path | str, mode: str = "wb"):
    """open() for writing a new or truncated file that only the owner can read (0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    return os.fdopen(os.open(path, flags, 0o600), mode)


def private_sqlite(url: str) -> None:
    """For a SQLite file URL: create the database file 0600 before SQLite opens it (SQLite
    gives its -wal and -shm files the database file's mode), and take group and other
    permissions away from the three files where an older start left them readable."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    if parsed.database.startswith("file:"):
        return  # a URI filename with its own options: left to whoever wrote it
    path = Path(parsed.database)
    private_dirs(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
