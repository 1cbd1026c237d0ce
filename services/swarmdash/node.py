"""What one running node holds: settings, the event log, Socket.IO and the relay."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from flask_socketio import SocketIO

from . import metrics
from .eventlog import BackendUnavailable, EventLog
from .loops import every
from .ratelimit import MemoryRateLimiter, RateLimiter
from .registry import MemoryRegistry, Record, Registry
from .relay import Relay
from .replication import ReplicationMonitor
from .settings import Settings
from .storewatch import StoreWatch, peer_addresses

VERSION = "0.1.0"
log = logging.getLogger("swarmdash.node")


@dataclass
class Node:
    settings: Settings
    event_log: EventLog
    socketio: SocketIO
    relay: Relay
    started: float = field(default_factory=time.time)
    clients: set[str] = field(default_factory=set)
    registry: Registry = field(default_factory=MemoryRegistry)
    rate_limiter: RateLimiter = field(default_factory=lambda: MemoryRateLimiter(0, 1))
    replication: ReplicationMonitor | None = None  # Redis replication and Sentinel metrics
    stopping: bool = False
    #: Addresses of the other live nodes at the last heartbeat: asked during a Redis outage.
    peers: list[str] = field(default_factory=list)
    store: StoreWatch = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.store = StoreWatch(self.event_log.ping, lambda: self.peers,
                                grace=s.redis_outage_grace, peer_timeout=s.peer_check_timeout,
                                ping_timeout=s.redis_timeout,
                                on_back=self.relay.wake,
                                answered_at=lambda: self.relay.answered_at,
                                answer_counts_for=s.store_check_interval / 2)

    @property
    def uptime(self) -> float:
        return time.time() - self.started

    def health(self) -> tuple[dict[str, Any], bool]:
        """/health from the store watch: ok, degraded (Redis away for every node, within
        REDIS_OUTAGE_GRACE: stay in the pool) or unavailable (leave it)."""
        outage = None
        if self.event_log.embedded:
            store, ok = "embedded", True
        else:
            if not self.store.checked:  # the watch has not run yet: look now
                self.store.check()
            ok = self.store.healthy()
            store = "ok" if self.store.available else "unreachable"
            if not self.store.available:
                outage = self.store.status()
        body = {
            "status": "unavailable" if not ok else "degraded" if outage else "ok",
            "node": self.settings.node_name,
            "websocket_clients": len(self.clients),
            "uptime": round(self.uptime, 3),
            "version": VERSION,
            "redis": store,
            "relay": {"connected": self.relay.connected,
                      "position": None if self.relay.position is None else
                      "{}-{}".format(*self.relay.position)},
        }
        if outage is not None:
            body["outage"] = outage
        return body, ok


    def record(self) -> Record:
        """This node's heartbeat record in the cluster registry."""
        return {
            "node": self.settings.node_name,
            "address": self.settings.advertised_address,
            "version": VERSION,
            "engine": self.settings.async_mode,
            "started": round(self.started, 3),
            "uptime": round(self.uptime, 3),
            "clients": len(self.clients),
            "clients_per_swarm": self.relay.subscribers(),
            "ts": round(time.time(), 3),
        }

    def beat(self) -> bool:
        """Write one heartbeat; False (logged, counted) when the registry is unreachable."""
        try:
            self.registry.beat(self.record(), self.settings.heartbeat_ttl)
            live = self.registry.live()
            metrics.CLUSTER_NODES.set(len(live))
            self.peers = peer_addresses(live, self.settings.node_name)
        except BackendUnavailable as exc:  # the node keeps serving; the TTL tells the rest
            metrics.REDIS_ERRORS.labels(component="registry").inc()
            log.warning("heartbeat failed: %s", exc)
            return False
        return True

    def _every(self, interval: float, round_: Callable[[], object], what: str) -> None:
        every(interval, round_, sleep=self.socketio.sleep, running=lambda: not self.stopping,
              what=what)

    def heartbeat_loop(self) -> None:
        self._every(self.settings.heartbeat_interval, self.beat, "heartbeat")

    def store_watch_loop(self) -> None:
        self._every(self.settings.store_check_interval, self.store.check, "store watch round")

    def replication_loop(self) -> None:
        """Refresh the replication and Sentinel metrics, apart from the heartbeat: a sentinel
        that does not answer must not delay the node's heartbeats."""
        if self.replication is not None:
            self._every(self.settings.heartbeat_interval, self.replication.poll,
                        "replication metrics")

    def leave(self) -> None:
        """Stopping on purpose: drop out of the live nodes now rather than after the TTL."""
        self.stopping = True
        try:
            self.registry.leave(self.settings.node_name)
        except BackendUnavailable as exc:
            log.warning("could not leave the registry: %s", exc)


def current_node() -> Node:
    node: Node = current_app.extensions["swarmdash"]
    return node


def node_of(app: Flask) -> Node:
    node: Node = app.extensions["swarmdash"]
    return node
