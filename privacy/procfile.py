"""`make run`'s process runner: starts the Procfile's processes, prefixes their output, and
stops them cleanly.

Each process gets the same PORT and PRIVACY_BASE_URL, so every one of them builds links to
the address that is served. On Ctrl-C or SIGTERM each process's main pid alone gets SIGTERM:
gunicorn's master stops its workers, and Celery's main process ends its pool and beat itself
(a signal to the whole process group, as general Procfile runners send, reaches the pool's
children first, and Celery logs their deaths as errors). A process still running after the
grace period is killed, and that is said. A requested stop ends with exit status 0; a
process that ends by itself stops the others and the runner exits 1.

    python -m privacy.procfile [--procfile Procfile] [--port 8000] [--grace 30]
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

COLOURS = ("36", "33", "32", "35", "34", "31")


@dataclass
class Entry:
    name: str
    command: str


@dataclass
class Running:
    entry: Entry
    process: subprocess.Popen
    reader: threading.Thread


def parse(text: str) -> list[Entry]:
    """`name: command` lines; blank lines and # comments are skipped."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep or not name.strip().isidentifier() or not command.strip():
            raise ValueError(f"Procfile line {number} is not `name: command`")
        entries.append(Entry(name.strip(), command.strip()))
    if not entries:
        raise ValueError("the Procfile names no process")
    return entries


class Printer:
    """Lines of every process, whole and in arrival order, with time and name in front."""

    def __init__(self, names: list[str], out=sys.stdout) -> None:
        self.out = out
        self.width = max(len(n) for n in [*names, "system"]) + 2
        self.colour = out.isatty() and not os.environ.get("NO_COLOR")
        self.lock = threading.Lock()
        self.names = names

    def line(self, name: str, text: str) -> None:
        prefix = f"{datetime.now():%H:%M:%S} {name.ljust(self.width)}|"
        if self.colour:
            index = self.names.index(name) if name in self.names else -1
            code = COLOURS[index % len(COLOURS)] if index >= 0 else "1"
            prefix = f"\033[{code}m{prefix}\033[0m"
        with self.lock:
            self.out.write(f"{prefix} {text}\n")
            self.out.flush()


class Runner:
    def __init__(self, entries: list[Entry], env: dict[str, str], grace: float) -> None:
        self.entries = entries
        self.env = env
        self.grace = grace
        self.printer = Printer([f"{e.name}.1" for e in entries])
        self.running: list[Running] = []
        self.stop_requested = threading.Event()
        self.signals = 0

    def say(self, text: str) -> None:
        self.printer.line("system", text)

    def start(self) -> None:
        for entry in self.entries:
            name = f"{entry.name}.1"
            process = subprocess.Popen(  # noqa: S603 - the project's own Procfile
                ["/bin/sh", "-c", "exec " + entry.command],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C on the terminal reaches the runner, not the
                # processes, which then stop in the order the runner chooses.
                start_new_session=True,
            )
            reader = threading.Thread(target=self._relay, args=(name, process), daemon=True)
            reader.start()
            self.running.append(Running(entry, process, reader))
            self.say(f"{name} started (pid {process.pid}): {entry.command}")

    def _relay(self, name: str, process: subprocess.Popen) -> None:
        for raw in iter(process.stdout.readline, b""):
            self.printer.line(name, raw.decode(errors="replace").rstrip("\n"))

    def on_signal(self, signum, _frame) -> None:
        self.signals += 1
        if self.signals == 1:
            self.say(f"{signal.Signals(signum).name} received: stopping")
            self.stop_requested.set()
        else:  # asked twice: no more waiting
            self.say("asked again: killing")
            self._kill_all()

    def wait(self) -> int:
        """Until a stop is asked or a process ends; then stop the rest. The exit status."""
        while not self.stop_requested.is_set():
            ended = [r for r in self.running if r.process.poll() is not None]
            if ended:
                for r in ended:
                    self.say(f"{r.entry.name}.1 ended by itself (status {r.process.returncode})")
                self.stop()
                return 1
            self.stop_requested.wait(0.2)
        return self.stop()

    def stop(self) -> int:
        """SIGTERM to every main pid still running; after `grace` seconds, SIGKILL."""
        started = time.monotonic()
        for r in self.running:
            if r.process.poll() is None:
                self.say(f"sending SIGTERM to {r.entry.name}.1 (pid {r.process.pid})")
                r.process.send_signal(signal.SIGTERM)
        clean = True
        for r in self.running:
            left = self.grace - (time.monotonic() - started)
            try:
                r.process.wait(timeout=max(left, 0))
            except subprocess.TimeoutExpired:
                clean = False
                self.say(f"{r.entry.name}.1 still running after {self.grace:g} s: SIGKILL")
                self._kill(r)
                r.process.wait()
            r.reader.join(timeout=5)
            self.say(f"{r.entry.name}.1 stopped (status {r.process.returncode})")
        self.say(f"stopped in {time.monotonic() - started:.1f} s")
        return 0 if clean else 1

    def _kill(self, r: Running) -> None:
        try:
            os.killpg(r.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _kill_all(self) -> None:
        for r in self.running:
            if r.process.poll() is None:
                self._kill(r)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m privacy.procfile", description=__doc__)
    parser.add_argument("--procfile", default="Procfile")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    parser.add_argument(
        "--grace", type=float, default=30.0, help="seconds to wait for a clean stop (30)"
    )
    args = parser.parse_args(argv)
    try:
        entries = parse(Path(args.procfile).read_text())
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    env = dict(os.environ)
    env["PORT"] = str(args.port)
    env.setdefault("PRIVACY_BASE_URL", f"http://127.0.0.1:{args.port}")
    env.setdefault("PYTHONUNBUFFERED", "1")
    runner = Runner(entries, env, args.grace)
    signal.signal(signal.SIGINT, runner.on_signal)
    signal.signal(signal.SIGTERM, runner.on_signal)
    runner.say(
        "processes: "
        + ", ".join(f"{e.name} ({shlex.split(e.command)[0]})" for e in entries)
        + f"; links point at {env['PRIVACY_BASE_URL']}"
    )
    runner.start()
    return runner.wait()


if __name__ == "__main__":
    sys.exit(main())
