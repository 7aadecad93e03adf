"""The embedded broker: kombu's filesystem transport, with message files that appear whole.

kombu's own `_put` creates the message file under its final name and then writes into it,
so a worker polling at that moment reads an empty or partial file and dies on the JSON
error (kombu issue 1551). Here a message is written under a name the queue ignores and
renamed into place: on one file system the rename is atomic, so readers only ever see
whole files.

No fsync per message: like the embedded SQLite database (synchronous=NORMAL), the embedded
broker may lose its last messages on an OS crash or power loss, and dsr.resume queues open
requests again. Such a crash can leave a renamed file without its data, so the worker drops
an unreadable message with an error in its log instead of stopping on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps

from privacy import files

logger = logging.getLogger(__name__)

# `_get`, `_size` and `_purge` take only names ending in ".<queue>.msg".
PARTIAL_SUFFIX = ".part"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Write `payload` under a name the queue ignores, then rename it into `queue`."""
        # kombu's name: oldest first when the worker sorts the folder.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        partial = path + PARTIAL_SUFFIX
        try:
            with files.open_private(partial) as file:
                file.write(dumps(payload).encode())
            os.replace(partial, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        """kombu's, then the exchange table made private like every file of the broker."""
        super()._queue_bind(exchange, routing_key, pattern, queue)
        with contextlib.suppress(OSError):
            os.chmod(self._exchange_file(exchange), 0o600)

    def _get(self, queue):
        """The next message of `queue`; an unreadable file is dropped, not fatal."""
        while True:
            try:
                return super()._get(queue)
            except ValueError:
                # kombu has already taken the file off the queue; the next call reads on.
                logger.error("embedded broker: dropped an unreadable message of queue %s", queue)


class Transport(filesystem.Transport):
    """Celery's `broker_transport` for `filesystem://` URLs (privacy.config)."""

    Channel = Channel

    # Celery's loop for transports like this one waits up to 2 s for a message and checks
    # for a requested shutdown only between waits; shorter waits let the worker stop
    # promptly on SIGTERM (`make run`'s Ctrl-C) instead of seconds later.
    MAX_WAIT = 0.25

    def drain_events(self, connection, timeout=None):
        wait = self.MAX_WAIT if timeout is None else min(timeout, self.MAX_WAIT)
        return super().drain_events(connection, timeout=wait)
