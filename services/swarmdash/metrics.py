"""Every Prometheus metric of a node, in one registry, with bounded labels only.

Labels are event types, channels, Socket.IO event names, components and reasons: fixed
sets. Never a sid, user, swarm or room (unbounded). Besides these, the registry exports
the process collector's ``process_*`` series and ``swarmdash_build_info``; counters and
histograms carry no ``*_created`` series (nothing here reads them, and they double the
series count).
"""

from __future__ import annotations

import platform
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from . import __version__
from .events import EVENT_TYPES

disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)
NS = "swarmdash"

ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_open_fds, ...
BUILD = Info(f"{NS}_build", "The SwarmDash version this node runs, and its Python",
             registry=REGISTRY)
BUILD.info({"version": __version__, "python": platform.python_version()})

CLIENTS = Gauge(f"{NS}_connected_clients", "Socket.IO clients connected to this node",
                registry=REGISTRY)
EVENTS_INGESTED = Counter(f"{NS}_events_ingested_total", "Events accepted into the event log",
                          ["type", "source"], registry=REGISTRY)
INGEST_REJECTED = Counter(f"{NS}_ingest_rejected_total",
                          "Ingest requests refused, by reason: one per refused request, "
                          "whatever the number of events in it", ["reason"], registry=REGISTRY)
EVENTS_RELAYED = Counter(f"{NS}_events_relayed_total", "Events read from the log by the relay",
                         ["type"], registry=REGISTRY)
EVENTS_REPLAYED = Counter(f"{NS}_events_replayed_total", "Events replayed to resuming clients",
                          registry=REGISTRY)
EMITS = Counter(f"{NS}_emits_total", "Socket.IO emits to rooms (one per batch)", ["event"],
                registry=REGISTRY)
EVENTS_EMITTED = Counter(f"{NS}_events_emitted_total",
                         "Events delivered, counted once per receiving client", ["event"],
                         registry=REGISTRY)
BATCH_SIZE = Histogram(f"{NS}_batch_size_events", "Events per emitted batch", ["event"],
                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000), registry=REGISTRY)
EMIT_LATENCY = Histogram(
    f"{NS}_emit_latency_seconds", "Event timestamp to emit, oldest event of each batch",
    ["event"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2.5, 5, 10),
    registry=REGISTRY)
RELAY_LAG = Gauge(f"{NS}_relay_lag_seconds", "Age of the newest event the relay processed",
                  registry=REGISTRY)
REDIS_ERRORS = Counter(f"{NS}_redis_errors_total", "Failed calls to Redis", ["component"],
                       registry=REGISTRY)
SLOW_CONSUMER_DROPS = Counter(f"{NS}_slow_consumer_drops_total",
                              "Clients disconnected because their queue overflowed",
                              registry=REGISTRY)
REDIS_OUTAGE = Gauge(f"{NS}_redis_outage",
                     "1 while this node cannot reach Redis, by scope: cluster (no peer reaches "
                     "it either) or node (this node alone)", ["scope"], registry=REGISTRY)
CLUSTER_NODES = Gauge(f"{NS}_cluster_nodes",
                      "Live nodes in the cluster registry, as this node sees it",
                      registry=REGISTRY)
CONNECTION_LIMIT = Gauge(f"{NS}_connection_limit",
                         "Connections this node's server accepts (WORKER_CONNECTIONS)",
                         registry=REGISTRY)
FALLBACK_POLLS = Counter(f"{NS}_fallback_polls_total",
                         "GET /api/v1/events made by dashboards in polling fallback",
                         registry=REGISTRY)
SUBSCRIBE = Counter(f"{NS}_subscribe_total", "subscribe requests by outcome", ["outcome"],
                    registry=REGISTRY)
DEFAULT_SUBSCRIPTIONS = Counter(
    f"{NS}_default_subscriptions_total",
    "Clients that sent no subscribe in time and got DEFAULT_SUBSCRIPTION, by outcome "
    "(ok or a subscribe error code)", ["outcome"], registry=REGISTRY)
CONNECTS_REFUSED = Counter(f"{NS}_connects_refused_total",
                           "Connects refused by this node, by reason (node_full, too_many_pending)",
                           ["reason"], registry=REGISTRY)
PENDING_CONNECTIONS = Gauge(f"{NS}_pending_connections",
                            "Connections without a Socket.IO session yet (MAX_PENDING_CONNECTIONS)",
                            registry=REGISTRY)
HANDSHAKE_TIMEOUTS = Counter(f"{NS}_handshake_timeouts_total",
                             "Connections closed for no Socket.IO connect within "
                             "HANDSHAKE_TIMEOUT", registry=REGISTRY)
SESSIONS_EXPIRED = Counter(f"{NS}_sessions_expired_total",
                           "Clients disconnected because their viewer token expired",
                           registry=REGISTRY)
CLIENT_LIMIT = Gauge(f"{NS}_client_limit", "Socket.IO clients this node accepts "
                     "(MAX_CLIENTS_PER_NODE)", registry=REGISTRY)

REPLICA_WAIT_SHORT = Counter(
    f"{NS}_replica_wait_short_total",
    "WAITs answered by fewer replicas than INGEST_MIN_REPLICAS (op: write = an ingest "
    "answered 503, read = a relay or resume read held back)", ["op"], registry=REGISTRY)
REDIS_PRIMARY_CHANGES = Counter(
    f"{NS}_redis_primary_changes_total",
    "Times this node saw Sentinel name a different Redis primary (a failover)",
    registry=REGISTRY)
REDIS_REPLICAS = Gauge(
    f"{NS}_redis_replicas",
    "Replicas of the Redis primary as Sentinel reports them (state: online, down)",
    ["state"], registry=REGISTRY)
REDIS_REPLICATION_LAG = Gauge(
    f"{NS}_redis_replication_lag_seconds",
    "Seconds since the slowest online replica last acknowledged the primary's stream",
    registry=REGISTRY)
REDIS_REPLICATION_LAG_BYTES = Gauge(
    f"{NS}_redis_replication_lag_bytes",
    "Bytes of the primary's replication stream the slowest online replica still lacks",
    registry=REGISTRY)
SENTINELS_CONFIGURED = Gauge(
    f"{NS}_redis_sentinels_configured", "Sentinels listed in REDIS_URL (0: no Sentinel)",
    registry=REGISTRY)
SENTINELS_REACHABLE = Gauge(
    f"{NS}_redis_sentinels_reachable", "Sentinels of REDIS_URL that answer this node",
    registry=REGISTRY)
SENTINEL_QUORUM = Gauge(
    f"{NS}_redis_sentinel_quorum",
    "1 when the sentinels can authorize a failover of the primary (SENTINEL CKQUORUM)",
    registry=REGISTRY)
GC_FROZEN = Gauge(
    f"{NS}_gc_frozen_objects",
    "Objects built at start-up that the garbage collector's full collections skip "
    "(0: not frozen)", registry=REGISTRY)


_RELAYED = {kind: EVENTS_RELAYED.labels(type=kind) for kind in EVENT_TYPES}


def relayed(counts: dict[str, int]) -> None:
    """Count the events of one read of the relay, ``counts`` by type (the hot path:
    children resolved once)."""
    for kind, n in counts.items():
        _RELAYED[kind].inc(n)


_Children = tuple[Any, Any, Any, Any]
_EMISSION: dict[str, _Children] = {}


def record_emission(event: str, size: int, receivers: int, latency: float) -> None:
    """One room emission (the hot path: each event name's children are resolved once)."""
    children = _EMISSION.get(event)
    if children is None:
        children = _EMISSION[event] = (EMITS.labels(event=event),
                                       EVENTS_EMITTED.labels(event=event),
                                       BATCH_SIZE.labels(event=event),
                                       EMIT_LATENCY.labels(event=event))
    emits, emitted, batch_size, emit_latency = children
    emits.inc()
    emitted.inc(size * receivers)
    batch_size.observe(size)
    emit_latency.observe(max(0.0, latency))


def exposition() -> bytes:
    return generate_latest(REGISTRY)
