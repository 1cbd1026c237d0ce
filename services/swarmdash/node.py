"""What one running node holds: settings, the event log, Socket.IO and the relay."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from flask_socketio import SocketIO

from . import metrics
from .eventlog import EventLog
from .ratelimit import MemoryRateLimiter, RateLimiter
from .registry import MemoryRegistry, Record, Registry
from .relay import Relay
from .replication import ReplicationMonitor
from .settings import Settings

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

    @property
    def uptime(self) -> float:
        return time.time() - self.started

    def health(self) -> tuple[dict[str, Any], bool]:
        if self.event_log.embedded:
            store, ok = "embedded", True
        else:
            ok = self.event_log.ping()
            store = "ok" if ok else "unreachable"
        body = {
            "status": "ok" if ok else "unavailable",
            "node": self.settings.node_name,
            "websocket_clients": len(self.clients),
            "uptime": round(self.uptime, 3),
            "version": VERSION,
            "redis": store,
            "relay": {"connected": self.relay.connected,
                      "position": None if self.relay.position is None else
                      "{}-{}".format(*self.relay.position)},
        }
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
            metrics.CLUSTER_NODES.set(len(self.registry.live()))
        except Exception as exc:  # Redis down: the node keeps serving; the TTL tells the rest
            metrics.REDIS_ERRORS.labels(component="registry").inc()
            log.warning("heartbeat failed: %s", exc)
            return False
        return True

    def heartbeat_loop(self) -> None:
        while not self.stopping:
            self.beat()
            self.socketio.sleep(self.settings.heartbeat_interval)

    def replication_loop(self) -> None:
        """Refresh the replication and Sentinel metrics, apart from the heartbeat: a sentinel
        that does not answer must not delay the node's heartbeats."""
        while not self.stopping and self.replication is not None:
            try:
                self.replication.poll()
            except Exception:  # the metrics must not end the loop of a live node
                log.exception("replication metrics failed")
            self.socketio.sleep(self.settings.heartbeat_interval)

    def leave(self) -> None:
        """Stopping on purpose: drop out of the live nodes now rather than after the TTL."""
        self.stopping = True
        try:
            self.registry.leave(self.settings.node_name)
        except Exception as exc:
            log.warning("could not leave the registry: %s", exc)


def current_node() -> Node:
    node: Node = current_app.extensions["swarmdash"]
    return node


def node_of(app: Flask) -> Node:
    node: Node = app.extensions["swarmdash"]
    return node
