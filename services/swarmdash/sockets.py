"""Socket.IO handlers (namespace ``/``): connect, subscribe, unsubscribe, disconnect."""

from __future__ import annotations

import time
from typing import Any

from flask import request
from flask_socketio import SocketIO, emit

from . import metrics
from .batching import Subscription
from .cursor import Cursor
from .eventlog import Snapshot
from .events import CHANNELS, valid_agent_id, valid_swarm_name
from .node import Node
from .relay import SubscribeError


class BadRequest(ValueError):
    pass


def parse_subscription(data: Any, *,
                       unsubscribe: bool = False) -> tuple[Subscription, Cursor | None]:
    """Check a subscribe/unsubscribe payload; raise :class:`BadRequest` saying what is wrong."""
    if not isinstance(data, dict):
        raise BadRequest("payload must be an object like {swarm, channels, agent_id?, since?}")
    allowed = {"swarm", "channels", "agent_id", "since"}
    unknown = sorted(str(k)[:32] for k in data if k not in allowed)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    swarm = data.get("swarm")
    if swarm != "*" and not valid_swarm_name(swarm):
        raise BadRequest("swarm must be a swarm name or '*'")
    channels = data.get("channels", list(CHANNELS))
    if (not isinstance(channels, list) or not channels
            or not all(isinstance(c, str) and c in CHANNELS for c in channels)):
        raise BadRequest(f"channels must be a non-empty list of {', '.join(CHANNELS)}")
    agent_id = data.get("agent_id")
    if agent_id is not None and not valid_agent_id(agent_id):
        raise BadRequest("agent_id must match [A-Za-z0-9_.:@/-]{1,128}")
    since = data.get("since")
    cursor = None
    if since is not None and not unsubscribe:
        try:
            cursor = Cursor.decode(since)
        except ValueError as exc:
            raise BadRequest(f"since: {exc}") from None
    return Subscription(str(swarm), frozenset(channels), agent_id), cursor


def _snapshot_view(sub: Subscription, snap: Snapshot) -> dict[str, Any]:
    return snap.view(sub.agent_id)


def register(socketio: SocketIO, node: Node) -> None:
    relay = node.relay

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        node.clients.add(request.sid)  # type: ignore[attr-defined]
        metrics.CLIENTS.set(len(node.clients))
        emit("connection_established", {"sid": request.sid,  # type: ignore[attr-defined]
                                        "node": node.settings.node_name,
                                        "server_time": time.time()}, ignore_queue=True)

    @socketio.on("disconnect")
    def on_disconnect(reason: Any = None) -> None:
        sid = request.sid  # type: ignore[attr-defined]
        node.clients.discard(sid)
        metrics.CLIENTS.set(len(node.clients))
        relay.disconnect(sid)

    @socketio.on("subscribe")
    def on_subscribe(data: Any = None) -> dict[str, Any]:
        try:
            sub, since = parse_subscription(data)
            ack = relay.subscribe(request.sid, sub, since, _snapshot_view)  # type: ignore[attr-defined]
        except BadRequest as exc:
            metrics.SUBSCRIBE.labels(outcome="bad_request").inc()
            return {"ok": False, "error": "bad_request", "detail": str(exc)}
        except SubscribeError as exc:
            metrics.SUBSCRIBE.labels(outcome=exc.code).inc()
            return {"ok": False, "error": exc.code, "detail": exc.detail}
        metrics.SUBSCRIBE.labels(outcome="ok").inc()
        return ack

    @socketio.on("unsubscribe")
    def on_unsubscribe(data: Any = None) -> dict[str, Any]:
        try:
            sub, _ = parse_subscription(data, unsubscribe=True)
        except BadRequest as exc:
            return {"ok": False, "error": "bad_request", "detail": str(exc)}
        rooms = relay.unsubscribe(request.sid, sub.swarm, sub.agent_id)  # type: ignore[attr-defined]
        return {"ok": True, "rooms": rooms}

    @socketio.on_error_default
    def on_error(exc: Exception) -> dict[str, Any]:
        return {"ok": False, "error": "internal", "detail": type(exc).__name__}
