"""Files with personal data are private on disk: the embedded database with its -wal and
-shm, storage, outbox, broker and backups (0600 files, 0700 folders), whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from privacy import files
from tests import helpers


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_instance_made_by_the_cli_is_private(tmp_path):
    instance = tmp_path / "deep" / "instance"
    env = {
        k: v
        for k, v in helpers.service_env(instance).items()
        if k not in ("PRIVACY_DATA_KEYS", "PRIVACY_INDEX_KEY", "PRIVACY_SECRET_KEY")
    }
    helpers.flask_cli(env, "db", "upgrade")
    helpers.create_account(env, "Acme", "admin@acme.example")  # writes, so a WAL exists
    helpers.flask_cli(env, "backups", "run", "--quiet")

    assert mode(instance) == 0o700 and mode(instance.parent) == 0o700
    database = instance / "privacy.sqlite3"
    assert mode(database) == 0o600
    for suffix in ("-wal", "-shm"):
        sidecar = Path(f"{database}{suffix}")
        if sidecar.exists():
            assert mode(sidecar) == 0o600, sidecar
    for path in instance.rglob("*"):
        if path.name == "celerybeat-schedule":
            continue
        expected = 0o700 if path.is_dir() else 0o600
        assert mode(path) == expected, (path, oct(mode(path)))
    assert list((instance / "backups").rglob("*.bak")), "a backup was written"


def test_an_existing_database_left_readable_is_made_private(tmp_path):
    database = tmp_path / "old.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").write_bytes(b"")
        os.chmod(f"{database}{suffix}", 0o644)

    files.private_sqlite(f"sqlite:///{database}")

    for suffix in ("", "-wal", "-shm"):
        assert mode(Path(f"{database}{suffix}")) == 0o600


def test_broker_messages_are_private(tmp_path):
    script = (
        "from privacy.broker import Channel\n"
        "from kombu import Connection\n"
        f"c = Connection('filesystem://', transport='privacy.broker:Transport', "
        f"transport_options={{'data_folder_in': '{tmp_path}', 'data_folder_out': '{tmp_path}', "
        f"'control_folder': '{tmp_path / 'control'}'}})\n"
        "q = c.SimpleQueue('q'); q.put({'id': 1}); c.close()\n"
    )
    subprocess.run([str(helpers.BIN / "python"), "-c", script], check=True, cwd=helpers.ROOT)

    (message,) = tmp_path.glob("*.msg")
    assert mode(message) == 0o600
    for table in (tmp_path / "control").glob("*"):
        assert mode(table) == 0o600, table
