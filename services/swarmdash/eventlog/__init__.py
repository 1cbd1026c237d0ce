"""The event log: an ordered, bounded, resumable record of events plus current state.

``open_event_log(settings)`` returns the Redis implementation when ``REDIS_URL`` is set
and the embedded in-memory one otherwise; both follow :class:`~.base.EventLog`.
"""

from __future__ import annotations

from ..settings import Settings
from .base import (
    BackendUnavailable,
    BatchKey,
    EventLog,
    IdempotencyConflict,
    Snapshot,
    StateLimitExceeded,
    StateLimits,
)
from .memory import MemoryEventLog


def open_event_log(settings: Settings) -> EventLog:
    if settings.embedded:
        return MemoryEventLog(maxlen=settings.stream_maxlen, task_history=settings.task_history,
                              idempotency_ttl=settings.idempotency_ttl,
                              idempotency_max_keys=settings.idempotency_max_keys,
                              limits=StateLimits.from_settings(settings))
    from .redis import RedisEventLog

    return RedisEventLog.from_settings(settings)


__all__ = ["BackendUnavailable", "BatchKey", "EventLog", "IdempotencyConflict", "MemoryEventLog",
           "Snapshot", "StateLimitExceeded", "StateLimits", "open_event_log"]
