"""The event log: an ordered, bounded, resumable record of events plus current state.

Two implementations follow :class:`~.base.EventLog`: :class:`~.memory.MemoryEventLog`, the
embedded default, and :class:`~.redis.RedisEventLog`. :mod:`swarmdash.backends` opens the
one the settings name.
"""

from __future__ import annotations

from ..storeerror import BackendUnavailable
from .base import BatchKey, EventLog, IdempotencyConflict, Snapshot
from .limits import StateLimitExceeded, StateLimits
from .memory import MemoryEventLog

__all__ = ["BackendUnavailable", "BatchKey", "EventLog", "IdempotencyConflict", "MemoryEventLog",
           "Snapshot", "StateLimitExceeded", "StateLimits"]
