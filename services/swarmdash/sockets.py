"""Socket.IO handlers (namespace ``/``): connect, subscribe, unsubscribe, refresh_token,
disconnect.

The original dashboard's events (ping, join_room, leave_room) are in legacy.py."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import request
from flask_socketio import ConnectionRefusedError, SocketIO, emit

from . import legacy, metrics
from .auth.config import AuthConfig
from .auth.socket import SocketGate
from .deadlines import Deadlines
from .node import Node
from .ratelimit import MemoryRateLimiter
from .settings import Settings
from .storewatch import STORE_STATUS_EVENT
from .subscription import BadRequest, SubscribeError, from_payload

log = logging.getLogger(__name__)


def _one_payload(extra: tuple[Any, ...]) -> None:
    if extra:
        raise BadRequest(f"send one payload object, not {1 + len(extra)} arguments")


#: What python-socketio raises on a packet it cannot decode or dispatch.
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, RecursionError)


def _drop_clients_that_send_malformed_packets(socketio: SocketIO) -> None:
    """A packet python-socketio cannot decode (bad JSON, an event that is not a list, a
    stray attachment ...) disconnects its client with one warning line, as the reference
    Socket.IO server does, instead of a logged traceback per packet with the client kept."""
    server = socketio.server
    handle = server._handle_eio_message

    def on_message(eio_sid: str, data: Any) -> None:
        try:
            if isinstance(data, str) and data[:1] in ("2", "5"):  # EVENT, BINARY_EVENT
                # the handlers run later, in a task of their own: check the name here
                event = server.packet_class(encoded_packet=data).data
                if not (isinstance(event, list) and event and isinstance(event[0], str)):
                    raise ValueError("an event must be a list that starts with its name")
            handle(eio_sid, data)
        except _MALFORMED as exc:
            log.warning("dropped client %s: malformed Socket.IO packet (%s: %s)", eio_sid,
                        type(exc).__name__, str(exc)[:120])
            # not inline: a long-polling client's close is queued for its next GET, which
            # cannot come while this POST waits for it
            server.start_background_task(server.eio.disconnect, eio_sid)

    server.eio.on("message", on_message)


def _rate_limited(s: Settings, retry_after: float) -> dict[str, Any]:
    wait = round(retry_after, 3)
    return {"ok": False, "error": "rate_limited", "retry_after": wait,
            "detail": f"more than SUBSCRIBE_BURST={s.subscribe_burst} subscribes at once or "
                      f"SUBSCRIBE_RATE_LIMIT={s.subscribe_rate_limit:g}/s on this "
                      f"connection; retry after {wait:g} s"}


def register(socketio: SocketIO, node: Node) -> None:
    relay = node.relay
    gate = SocketGate(AuthConfig.from_settings(node.settings))
    s = node.settings
    subscribes = MemoryRateLimiter(s.subscribe_rate_limit, s.subscribe_burst)  # by sid
    deadlines = Deadlines(socketio.server, gate, max_pending=s.max_pending_connections,
                          timeout=s.handshake_timeout, sleep=socketio.sleep)
    deadlines.install()
    socketio.start_background_task(deadlines.run)
    compat = legacy.register(socketio, node, gate)  # the original dashboard's client

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        if len(node.clients) >= node.settings.max_clients_per_node:
            metrics.CONNECTS_REFUSED.labels(reason="node_full").inc()
            detail = (f"this node holds MAX_CLIENTS_PER_NODE="
                      f"{node.settings.max_clients_per_node} clients; retry later")
            raise ConnectionRefusedError(f"node_full: {detail}",
                                         {"error": "node_full", "detail": detail})
        viewer = gate.admit(request.sid, auth, request.environ)  # type: ignore[attr-defined]
        deadlines.watch(request.sid)  # type: ignore[attr-defined]
        node.clients.add(request.sid)  # type: ignore[attr-defined]
        compat.connected(request.sid)  # type: ignore[attr-defined]
        metrics.CLIENTS.set(len(node.clients))
        emit("connection_established", {"sid": request.sid,  # type: ignore[attr-defined]
                                        "node": node.settings.node_name,
                                        "server_time": time.time(),
                                        "viewer": viewer.describe()}, ignore_queue=True)
        if not node.store.available:  # it joins during a Redis outage: say so at once
            emit(STORE_STATUS_EVENT, node.store.status(), ignore_queue=True)

    @socketio.on("disconnect")
    def on_disconnect(reason: Any = None) -> None:
        sid = request.sid  # type: ignore[attr-defined]
        node.clients.discard(sid)
        gate.forget(sid)
        subscribes.forget(sid)
        compat.disconnected(sid)
        metrics.CLIENTS.set(len(node.clients))
        relay.disconnect(sid)

    @socketio.on("subscribe")
    def on_subscribe(data: Any = None, *extra: Any) -> dict[str, Any]:
        compat.subscribing(request.sid)  # type: ignore[attr-defined]
        try:
            _one_payload(extra)
            sub, since = from_payload(data)
            refusal = gate.refusal(request.sid, sub.swarm)  # type: ignore[attr-defined]
            if refusal is not None:
                metrics.SUBSCRIBE.labels(outcome=refusal["error"]).inc()
                return refusal
            decision = subscribes.take(request.sid, 1)  # type: ignore[attr-defined]
            if not decision.allowed:  # each one may read the log: bound how often
                metrics.SUBSCRIBE.labels(outcome="rate_limited").inc()
                return _rate_limited(s, decision.retry_after)
            ack = relay.subscribe(request.sid, sub, since)  # type: ignore[attr-defined]
        except BadRequest as exc:
            metrics.SUBSCRIBE.labels(outcome="bad_request").inc()
            return {"ok": False, "error": "bad_request", "detail": str(exc)}
        except SubscribeError as exc:
            metrics.SUBSCRIBE.labels(outcome=exc.code).inc()
            return {"ok": False, "error": exc.code, "detail": exc.detail}
        metrics.SUBSCRIBE.labels(outcome="ok").inc()
        return ack

    @socketio.on("unsubscribe")
    def on_unsubscribe(data: Any = None, *extra: Any) -> dict[str, Any]:
        try:
            _one_payload(extra)
            sub, _ = from_payload(data, unsubscribe=True)
        except BadRequest as exc:
            return {"ok": False, "error": "bad_request", "detail": str(exc)}
        rooms = relay.unsubscribe(request.sid, sub.swarm, sub.agent_id)  # type: ignore[attr-defined]
        return {"ok": True, "rooms": rooms}

    @socketio.on("refresh_token")
    def on_refresh_token(data: Any = None, *extra: Any) -> dict[str, Any]:
        """A new viewer token for this live connection, before the current one expires."""
        sid = request.sid  # type: ignore[attr-defined]
        try:
            _one_payload(extra)
        except BadRequest as exc:
            return {"ok": False, "error": "bad_request", "detail": str(exc)}
        ack = gate.refresh(sid, data, {swarm for swarm, _ in list(relay.clients.get(sid, {}))})
        if ack["ok"]:
            deadlines.watch(sid)
        return ack

    def on_unknown(*args: Any) -> dict[str, Any]:
        """Any other event: an ack that says so (without a handler the client would wait).

        Registered on python-socketio itself, which calls it with (event, sid, *data), but
        with (sid, *data) for an event named "*" (Flask-SocketIO's wrapper would then take
        the payload for the sid and fail before any handler runs).
        """
        named = len(args) > 1 and isinstance(args[1], str) and socketio.server.manager \
            .is_connected(args[1], "/")
        event = str(args[0])[:64] if named else "*"
        return {"ok": False, "error": "unknown_event",
                "detail": f"unknown event {event!r}: send subscribe, unsubscribe or "
                          "refresh_token"}

    socketio.server.on("*", on_unknown, namespace="/")
    _drop_clients_that_send_malformed_packets(socketio)

    @socketio.on_error_default
    def on_error(exc: Exception) -> dict[str, Any]:
        return {"ok": False, "error": "internal", "detail": type(exc).__name__}
