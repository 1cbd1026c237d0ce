"""Slow consumers: a client whose outgoing queue passes MAX_QUEUE_SIZE is disconnected.

A browser that stopped reading (a frozen tab, a dead network path) would otherwise make
its node buffer every batch for it. Every second the watchdog looks at the Engine.IO
queue of each connection; past the limit the connection is closed (after what is already
queued), counted in ``swarmdash_slow_consumer_drops_total`` and logged. Nothing more is
queued for it, so the node's memory stays bounded; the client reconnects and resumes from
the cursor of the last batch it did process, so it loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import metrics

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0  # how often queues are looked at; the limit is MAX_QUEUE_SIZE


class SlowConsumerWatchdog:
    def __init__(self, eio_server: Any, max_queue: int, sleep: Callable[[float], None]):
        self.eio = eio_server  # engineio.Server: .sockets maps eio sid -> Socket
        self.max_queue = max_queue
        self.sleep = sleep
        self.running = False

    def run(self) -> None:
        self.running = True
        while self.running:
            self.sleep(CHECK_INTERVAL_S)
            try:
                self.check()
            except Exception:  # the watchdog must outlive any one connection
                log.exception("slow-consumer check failed")

    def check(self) -> int:
        """Close every connection over the limit; return how many were closed."""
        dropped = 0
        for eio_sid, sock in list(self.eio.sockets.items()):
            if sock.closed or sock.closing:
                continue
            queued = sock.queue.qsize()
            if queued > self.max_queue:
                log.warning("disconnecting slow consumer %s: %d packets queued, MAX_QUEUE_SIZE=%d",
                            eio_sid, queued, self.max_queue)
                metrics.SLOW_CONSUMER_DROPS.inc()
                # not wait: its queue may never drain; the CLOSE goes after what is queued
                sock.close(wait=False, abort=False)
                dropped += 1
        return dropped
