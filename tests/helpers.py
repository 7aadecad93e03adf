"""Helpers for tests that run the service's real processes (gunicorn, flask CLI, celery)."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.conftest import TEST_DATA_KEYS
from tests.conftest import TEST_INDEX_KEY

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# gunicorn's settings; the processes below run in ROOT, where gunicorn finds it by this name.
GUNICORN_CONF = ROOT / "gunicorn.conf.py"


@functools.cache
def gunicorn_conf():
    """gunicorn.conf.py as a module (its name is no module name), loaded once per process:
    loading it again would make new classes of its log filter."""
    spec = importlib.util.spec_from_file_location("gunicorn_conf", GUNICORN_CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(instance: Path, **extra: str) -> dict[str, str]:
    """Environment for a real service process on its own instance folder."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRIVACY_")}
    env.update(
        {
            "PRIVACY_INSTANCE_PATH": str(instance),
            "PRIVACY_DATA_KEYS": TEST_DATA_KEYS,
            "PRIVACY_INDEX_KEY": TEST_INDEX_KEY,
            "PRIVACY_SECRET_KEY": "test-secret",
            # Where links point; tests that follow them pass the address they serve on.
            "PRIVACY_BASE_URL": "http://privacy.test",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def flask_cli(env: dict, *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"flask {' '.join(args[:2])} failed:\n{result.stderr}")
    return result.stdout


def create_account(env: dict, name: str, admin: str) -> dict:
    return json.loads(flask_cli(env, "accounts", "create", name, "--admin", admin))


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback test URL
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def running(args: list[str], env: dict, log: Path):
    """Run a process with output to `log`; stop it (and its children) afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


def postgres_database(url: str, prefix: str = "privacy_journey") -> tuple[str, Callable]:
    """A fresh database on the server of `url`, and a function that drops it."""
    import psycopg

    server = make_url(url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = server.set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return server.set(database=name).render_as_string(False), drop
