"""Waiting for replicas: ``WAIT`` after a write, or after a read plus a mark.

Redis replicates asynchronously: a primary that dies loses what its replicas had not
received, and Sentinel promotes a replica without it. ``INGEST_MIN_REPLICAS`` closes that
window for accepted events. Ingest runs its append and ``WAIT`` on one connection and
answers 202 only when enough replicas acknowledged it. Readers (the relay, resumes,
snapshots) write a small mark after their read on the same connection and ``WAIT`` for it:
the replication stream is ordered, so replicas holding the mark hold everything the read
saw, and no dashboard is shown an entry a failover could still take back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from .. import metrics
from ..storeerror import BackendUnavailable


class ReplicasBehind(BackendUnavailable):
    """Fewer replicas than required acknowledged in time (the caller may retry)."""


@dataclass(frozen=True)
class ReplicaWait:
    count: int        # INGEST_MIN_REPLICAS (0: no wait)
    timeout_ms: int   # INGEST_REPLICA_TIMEOUT_MS

    @property
    def needed(self) -> bool:
        return self.count > 0

    @property
    def timeout_s(self) -> float:
        """How much longer than a plain command a waiting one may take."""
        return self.timeout_ms / 1000 if self.needed else 0.0

    def run(self, conn: redis.Redis, command: Callable[[Any], Any] | None,
            mark: str | None = None) -> Any:
        """Queue ``command`` on a pipeline (one connection), then an optional ``mark`` write,
        then ``WAIT``; return the command's reply once ``count`` replicas acknowledged."""
        pipe = conn.pipeline(transaction=False)
        if command is not None:
            command(pipe)
        if mark is not None:
            pipe.set(mark, "1")
        pipe.wait(self.count, self.timeout_ms)
        replies = pipe.execute()
        reply = replies[0] if command is not None else None
        acked = int(replies[-1])
        # A read that found nothing has nothing to hold back.
        if acked < self.count and (command is None or mark is None or reply):
            metrics.REPLICA_WAIT_SHORT.labels(op="write" if mark is None else "read").inc()
            raise ReplicasBehind(
                f"{acked} of {self.count} replicas acknowledged within {self.timeout_ms} ms")
        return reply
