"""One place that opens a node's stores: the event log, the cluster registry and the ingest
rate limiter, for the configured ``REDIS_URL``.

- no ``REDIS_URL`` (embedded): all three in memory, for this node alone;
- ``redis://``, ``rediss://`` or ``redis+sentinel://``: all three in that Redis, shared by
  every node, on clients from :func:`swarmdash.redisconn.connect` (a Sentinel URL follows
  the primary through a failover).

Each store is a small interface with an in-memory implementation beside the Redis one
(:class:`~.eventlog.EventLog`, :class:`~.registry.Registry`, :class:`~.ratelimit.RateLimiter`).
The Redis ones take their clients as arguments, and raise
:class:`~.storeerror.BackendUnavailable` when Redis cannot answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from .eventlog import EventLog, MemoryEventLog, StateLimits
from .eventlog.redis import RedisEventLog
from .eventlog.replicas import ReplicaWait
from .keys import Keys
from .ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from .redisconn import connect
from .registry import MemoryRegistry, RedisRegistry, Registry
from .settings import Settings

#: Connections of each small pool: the registry's heartbeat, the relay's blocking read, /health.
SMALL_POOL = 2


@dataclass(frozen=True)
class Backends:
    """The stores of one node, all in memory or all in one Redis."""

    event_log: EventLog
    registry: Registry
    rate_limiter: RateLimiter


def open_backends(settings: Settings, *, event_log: EventLog | None = None) -> Backends:
    """The stores ``settings`` name; ``event_log``, when given, stands in for the configured
    one (a test's own log; the registry and the rate limiter still follow the settings)."""
    s = settings
    if s.embedded:
        return Backends(event_log or open_event_log(s), MemoryRegistry(),
                        MemoryRateLimiter(s.ingest_rate_limit, s.ingest_burst))
    keys = Keys(s.redis_key_prefix)
    shared = _shared_client(s)
    return Backends(
        event_log or _redis_event_log(s, shared, keys),
        RedisRegistry(connect(s.redis_url, s.redis_timeout, max_connections=SMALL_POOL), keys),
        RedisRateLimiter(shared, keys, s.ingest_rate_limit, s.ingest_burst))


def open_event_log(settings: Settings) -> EventLog:
    """The event log alone (a publisher, a benchmark): in memory when embedded, else Redis."""
    if settings.embedded:
        return MemoryEventLog(**_log_options(settings))
    return _redis_event_log(settings, _shared_client(settings), Keys(settings.redis_key_prefix))


def _log_options(s: Settings) -> dict[str, Any]:
    """What both event logs take from the settings."""
    return {"maxlen": s.stream_maxlen, "task_history": s.task_history,
            "idempotency_ttl": s.idempotency_ttl, "idempotency_max_keys": s.idempotency_max_keys,
            "limits": StateLimits.from_settings(s)}


def _replica_wait(s: Settings) -> ReplicaWait:
    return ReplicaWait(s.ingest_min_replicas, s.ingest_replica_timeout_ms)


def _shared_client(s: Settings) -> redis.Redis:
    """The pool most commands share (ingest, reads, the rate limiter), REDIS_MAX_CONNECTIONS
    at most; a read may wait INGEST_REPLICA_TIMEOUT_MS longer for the replicas."""
    return connect(s.redis_url, s.redis_timeout, max_connections=s.redis_max_connections,
                   read_timeout=s.redis_timeout + _replica_wait(s).timeout_s)


def _redis_event_log(s: Settings, shared: redis.Redis, keys: Keys) -> RedisEventLog:
    replicas = _replica_wait(s)
    blocking_timeout = s.redis_timeout + s.relay_block_ms / 1000 + replicas.timeout_s
    return RedisEventLog(
        shared, keys=keys, replicas=replicas, **_log_options(s),
        blocking_conn=connect(s.redis_url, s.redis_timeout, read_timeout=blocking_timeout,
                              max_connections=SMALL_POOL),
        health_conn=connect(s.redis_url, s.redis_timeout, max_connections=SMALL_POOL))
