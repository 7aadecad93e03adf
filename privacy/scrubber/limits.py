"""How many scrub requests run at once in this process (per account, and in all), and the
Deadline by which one batch must be done.

Counted per process, in memory: a gunicorn worker's threads are what a flood of scrub
requests would take, and this is where one process keeps threads free for other requests.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Hashable

ACCOUNT = "account"
PROCESS = "process"


class Slots:
    """Counting slots per key under a per-key and a total limit; thread-safe."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._running: collections.Counter = collections.Counter()
        self._total = 0

    def acquire(self, key: Hashable, *, per_key: int, total: int) -> str | None:
        """Take a slot for `key`. Returns None when taken, or which limit is reached
        (ACCOUNT or PROCESS) when not; then nothing is held."""
        with self._lock:
            if self._running[key] >= per_key:
                return ACCOUNT
            if self._total >= total:
                return PROCESS
            self._running[key] += 1
            self._total += 1
            return None

    def release(self, key: Hashable) -> None:
        with self._lock:
            if self._running[key] <= 0:
                return
            self._running[key] -= 1
            self._total -= 1
            if not self._running[key]:
                del self._running[key]

    def hold(self, key: Hashable, *, per_key: int, total: int) -> Held | str:
        """Like acquire, but returns a Held whose release() may be called more than once."""
        refused = self.acquire(key, per_key=per_key, total=total)
        return refused if refused is not None else Held(self, key)

    def running(self, key: Hashable | None = None) -> int:
        """Slots held by `key`, or by everyone."""
        with self._lock:
            return self._total if key is None else self._running[key]


class Held:
    """One slot taken; release() gives it back once, however often it is called."""

    def __init__(self, owner: Slots, key: Hashable) -> None:
        self._owner, self._key = owner, key
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._owner.release(self._key)


slots = Slots()
# A child forked while a thread held the lock would inherit it held, and the parent's counts.
os.register_at_fork(after_in_child=slots._reset)


class Deadline:
    """When work on a batch must stop: `seconds` from now (time.monotonic), or never."""

    __slots__ = ("at",)

    def __init__(self, seconds: float | None = None) -> None:
        self.at = None if seconds is None else time.monotonic() + max(seconds, 0.0)

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def remaining(self) -> float | None:
        """Seconds left (0 when passed), or None without a deadline."""
        return None if self.at is None else max(self.at - time.monotonic(), 0.0)
