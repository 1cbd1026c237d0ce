"""Slow consumers: a client that lets more than MAX_QUEUE_SIZE writes or MAX_QUEUE_BYTES
bytes wait, and does not read them, is disconnected.

A browser that stopped reading (a frozen tab, a dead network path) would otherwise make
its node buffer every batch for it. Every second the watchdog looks at what waits for each
connection: the backlog of a websocket's outbox (:mod:`swarmdash.wsconn`), or the
Engine.IO queue of any other connection (long-polling, the threading and eventlet
engines). A connection over either limit that has taken nothing for SLOW_CONSUMER_GRACE_S
is closed at once, dropping what waits for it; one that still reads (a large replay read
at its own pace) is left alone until twice MAX_QUEUE_BYTES wait for it. A replay is never
larger than MAX_QUEUE_BYTES (beyond it the client gets a snapshot). Drops are counted in
``swarmdash_slow_consumer_drops_total`` and logged. The node's memory stays bounded by
bytes, whatever the size of the messages; the client reconnects and resumes from the
cursor of the last batch it did process, so it loses nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from . import metrics
from .loops import every

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0  # how often queues are looked at; the limits are settings


def waiting(sock: Any) -> tuple[int, int, int]:
    """Writes and bytes waiting to be sent to one connection, and a count that grows
    whenever it takes something."""
    outbox = getattr(sock, "outbox", None)
    if outbox is not None:
        return len(outbox.backlog), outbox.backlog_bytes, outbox.sent_bytes
    queued = list(sock.queue.queue)  # Engine.IO packets; their data is str, bytes or dict
    size = 0
    for pkt in queued:
        data = getattr(pkt, "data", None)
        if isinstance(data, str | bytes):
            size += len(data)
    return len(queued), size, -len(queued)


class SlowConsumerWatchdog:
    def __init__(self, eio_server: Any, max_queue: int, sleep: Callable[[float], None],
                 max_bytes: int | None = None, grace_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.eio = eio_server  # engineio.Server: .sockets maps eio sid -> Socket
        self.max_queue = max_queue
        self.max_bytes = max_bytes
        self.grace_s = grace_s
        self.sleep = sleep
        self.clock = clock
        self.running = False
        # eio sid -> (its progress count, when that count last changed) while over a limit
        self._over: dict[str, tuple[int, float]] = {}

    def run(self) -> None:
        self.running = True
        every(CHECK_INTERVAL_S, self.check, sleep=self.sleep, running=lambda: self.running,
              what="slow-consumer check")

    def check(self) -> int:
        """Close every connection over a limit that stalls or stays over it; return how
        many were closed."""
        dropped = 0
        now = self.clock()
        over: dict[str, tuple[int, float]] = {}
        for eio_sid, sock in list(self.eio.sockets.items()):
            if sock.closed or sock.closing:
                continue
            writes, size, progress = waiting(sock)
            if writes <= self.max_queue and (self.max_bytes is None or size <= self.max_bytes):
                continue
            seen = self._over.get(eio_sid)
            far_over = self.max_bytes is not None and size > 2 * self.max_bytes
            if not far_over:
                if seen is None or seen[0] != progress:
                    over[eio_sid] = (progress, now)  # it took something: the clock restarts
                    continue
                if now - seen[1] < self.grace_s:
                    over[eio_sid] = seen
                    continue
            log.warning("disconnecting slow consumer %s: %d writes, %d bytes waiting "
                        "(MAX_QUEUE_SIZE=%d, MAX_QUEUE_BYTES=%s)", eio_sid, writes, size,
                        self.max_queue, self.max_bytes)
            metrics.SLOW_CONSUMER_DROPS.inc()
            # abort: what waits may never be read; the client resumes from its cursor
            sock.close(wait=False, abort=True)
            dropped += 1
        self._over = over
        return dropped
