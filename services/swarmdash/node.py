"""What one running node holds: settings, the event log, Socket.IO and the relay."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from flask_socketio import SocketIO

from .eventlog import EventLog
from .relay import Relay
from .settings import Settings

VERSION = "0.1.0"


@dataclass
class Node:
    settings: Settings
    event_log: EventLog
    socketio: SocketIO
    relay: Relay
    started: float = field(default_factory=time.time)
    clients: set[str] = field(default_factory=set)

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


def current_node() -> Node:
    node: Node = current_app.extensions["swarmdash"]
    return node


def node_of(app: Flask) -> Node:
    node: Node = app.extensions["swarmdash"]
    return node
