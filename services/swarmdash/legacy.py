"""Clients of the original SwarmBot dashboard, served as they are.

That dashboard connects and never sends ``subscribe``: its server put every client in a
``dashboard`` room and broadcast every batch to it.  Here a client that has not sent a
``subscribe`` within ``DEFAULT_SUBSCRIPTION_AFTER_MS`` gets the default subscription
(every swarm its token allows, every channel), made through ``Relay.subscribe`` like any
other so that ordering and the one-copy rule hold.  Its ``ping``, ``join_room`` and
``leave_room`` are answered as that server did, and of the events it listens for, those
that one of ours maps onto exactly are sent (``task_completed``, ``task_failed``).
docs/protocol.md says what maps and what does not.

Rooms are scopes of the viewer's token: ``dashboard`` is every swarm it allows, any other
name is the swarm of that name, refused unless the token lists it.  A client's rooms
become relay subscriptions with no overlap (a swarm inside ``dashboard`` adds nothing), so
no event reaches it twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import request
from flask_socketio import SocketIO, emit

from . import metrics
from .auth.socket import SocketGate
from .auth.tokens import ALL_SWARMS, Viewer
from .cursor import Cursor
from .events import CHANNELS, Event, valid_swarm_name
from .node import Node
from .subscription import SubscribeError, Subscription

log = logging.getLogger(__name__)

#: The room the original server put every client in: every swarm the token allows.
DASHBOARD = "dashboard"
EVERY_CHANNEL = frozenset(CHANNELS)
#: Socket.IO room of the clients whose default feed covers a swarm ("*": every swarm).
_FEED_ROOM = "legacy|{}"
_MAX_PING_ID = 128


def iso(ts: float) -> str | float:
    """Epoch seconds as the ISO 8601 UTC text the original server's timestamps were; a
    time no calendar date can hold (ingest accepts any 64-bit number) stays a number."""
    try:
        text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError, OSError):
        return ts
    return text.replace("+00:00", "Z")


def task_outcome(event: Event) -> tuple[str, dict[str, Any]] | None:
    """``task_completed`` / ``task_failed`` for a task event that finished, else None."""
    if event["type"] != "task":
        return None
    data = event["data"]
    status = data.get("status")
    if status == "completed":
        name, extra = "task_completed", {"result": data.get("result"),
                                         "duration_ms": data.get("duration_ms")}
    elif status == "failed":
        name, extra = "task_failed", {"error": data.get("error"),
                                      "traceback": data.get("traceback")}
    else:
        return None
    return name, {"task_id": data["task_id"], "agent_id": event["agent_id"], **extra,
                  "timestamp": iso(event["ts"]), "swarm": event["swarm"], "id": event.get("id")}


def _bad_request(detail: str) -> dict[str, Any]:
    return {"ok": False, "error": "bad_request", "detail": detail}


@dataclass
class Feed:
    """What one client holds through this module."""

    rooms: set[str] = field(default_factory=set)  # joined: "dashboard" and swarm names
    scopes: set[str] = field(default_factory=set)  # its relay subscriptions: "*" or swarms
    resume: str | None = None  # where subscriptions released last left off
    # looked up per call: a gevent or eventlet lock once the engine has patched threading
    lock: threading.Lock = field(default_factory=lambda: threading.Lock())


class Compat:
    """Default subscriptions and rooms of every client of this node, by session id."""

    def __init__(self, socketio: SocketIO, node: Node, gate: SocketGate):
        self.server = socketio.server
        self.sleep = socketio.sleep
        self.spawn = socketio.start_background_task
        self.settings = node.settings
        self.relay = node.relay
        self.gate = gate
        self.feeds: dict[str, Feed] = {}
        self.subscribed: set[str] = set()  # clients that sent a subscribe of their own
        self.relay.listeners.append(self.on_event)

    # --- hooks of sockets.py ------------------------------------------------------------
    def connected(self, sid: str) -> None:
        self.feeds[sid] = Feed()
        if self.settings.default_subscription != "none":
            self.spawn(self._after_grace, sid)

    def subscribing(self, sid: str) -> None:
        """``sid`` speaks the subscribe protocol: no default subscription for it, and the
        default subscription or rooms it holds end (else it would get events twice)."""
        self.subscribed.add(sid)
        feed = self.feeds.get(sid)
        if feed is not None:
            with feed.lock:  # waits for a default subscription being made right now
                if feed.rooms:
                    feed.rooms.clear()
                    self._apply(sid, feed)

    def disconnected(self, sid: str) -> None:
        self.subscribed.discard(sid)
        self.feeds.pop(sid, None)

    # --- the default subscription -------------------------------------------------------
    def _after_grace(self, sid: str) -> None:
        self.sleep(self.settings.default_subscription_after_ms / 1000)
        delay = 0.1
        while True:
            feed = self.feeds.get(sid)
            if feed is None or sid in self.subscribed:
                return
            with feed.lock:
                if sid in self.subscribed:
                    return
                error = self._join(sid, feed, DASHBOARD)
            metrics.DEFAULT_SUBSCRIPTIONS.labels(outcome=error or "ok").inc()
            if error != "unavailable":
                return
            self.sleep(delay)  # the event log is away: try again until it is back
            delay = min(delay * 2, self.settings.relay_retry_max_s)

    # --- rooms -> relay subscriptions ---------------------------------------------------
    def join(self, sid: str, room: str) -> dict[str, Any] | None:
        """Add ``room`` to the client's feed; the refusal ack, or None when it joined."""
        viewer = self.gate.viewers.get(sid)
        if room != DASHBOARD or viewer is None or viewer.expired():
            refusal = self.gate.refusal(sid, room)  # the token's swarms; or unauthorized
            if refusal is not None:
                return refusal
        feed = self.feeds.get(sid)
        if feed is None:
            return {"ok": False, "error": "disconnected", "detail": "the client has left"}
        with feed.lock:
            return self._refused(self._join(sid, feed, room))

    def leave(self, sid: str, room: str) -> dict[str, Any] | None:
        """Remove ``room`` from the client's feed; the error ack if what remains failed."""
        feed = self.feeds.get(sid)
        if feed is None or room not in feed.rooms:
            return None
        with feed.lock:
            feed.rooms.discard(room)
            return self._refused(self._apply(sid, feed))

    def _join(self, sid: str, feed: Feed, room: str) -> str | None:
        """Called with the feed's lock: all or nothing (a failed join is undone)."""
        if room in feed.rooms:
            return None
        feed.rooms.add(room)
        error = self._apply(sid, feed)
        if error is not None:
            feed.rooms.discard(room)
            self._apply(sid, feed)
            log.log(logging.DEBUG if error == "unavailable" else logging.WARNING,
                    "client %s: room %r not joined: %s", sid, room, error)
        return error

    @staticmethod
    def scopes(rooms: set[str], viewer: Viewer | None) -> set[str]:
        """The relay subscriptions (swarms, or "*") that serve ``rooms``, without overlap."""
        if viewer is None or viewer.expired():
            return set()
        if DASHBOARD in rooms:
            return {ALL_SWARMS} if viewer.swarms is None else set(viewer.swarms)
        return {room for room in rooms if viewer.may_see(room)}

    def _apply(self, sid: str, feed: Feed) -> str | None:
        """Make the client's relay subscriptions those of its rooms; the first error code.

        Subscriptions that go are released first (nothing of theirs left undelivered); the
        new ones continue from that point, or from the relay's head, so no event arrives
        twice or goes missing when a client moves from ``dashboard`` to single swarms.
        """
        want = self.scopes(feed.rooms, self.gate.viewers.get(sid))
        gone = feed.scopes - want
        if gone:
            for scope in gone:
                with contextlib.suppress(KeyError, ValueError):  # it has just disconnected
                    self.server.leave_room(sid, _FEED_ROOM.format(scope), namespace="/")
            feed.resume = self.relay.release(sid, [(scope, None) for scope in gone])
            feed.scopes -= gone
        error = None
        for scope in sorted(want - feed.scopes):
            try:
                self.relay.subscribe(sid, Subscription(scope, EVERY_CHANNEL), self._since(feed))
            except SubscribeError as exc:
                error = error or exc.code
                continue
            feed.scopes.add(scope)
            with contextlib.suppress(KeyError, ValueError):  # it has just disconnected
                self.server.enter_room(sid, _FEED_ROOM.format(scope), namespace="/")
        if error is None:
            feed.resume = None
        return error

    def _since(self, feed: Feed) -> Cursor:
        if feed.resume is not None:
            return Cursor.decode(feed.resume)
        head = self.relay.position
        if head is None:
            raise SubscribeError("unavailable", "the event log is unreachable; retry")
        return Cursor.at(head)  # from now on, as the original server: no history

    def _refused(self, error: str | None) -> dict[str, Any] | None:
        if error is None:
            return None
        return {"ok": False, "error": error, "detail": self._explain(error)}

    def _explain(self, error: str) -> str:
        return {"too_many_subscriptions": "the token's swarms need more subscriptions than "
                                          f"MAX_SUBSCRIPTIONS_PER_CLIENT="
                                          f"{self.settings.max_subscriptions}",
                "room_full": f"MAX_ROOM_SIZE={self.settings.max_room_size} clients of this "
                             "node already share this feed; retry later",
                "unavailable": "the event log is unreachable; retry"}.get(error, error)

    # --- events of the original server that map exactly onto ours ---------------------
    def on_event(self, event: Event) -> None:
        """Called by the relay for every event: send the finished task's own event (built
        only when a default feed covers its swarm: every node reads every event)."""
        if event["type"] != "task":
            return
        rooms = self.server.manager.rooms.get("/", {})
        targets = [r for r in (_FEED_ROOM.format(event["swarm"]), _FEED_ROOM.format(ALL_SWARMS))
                   if r in rooms]
        outcome = task_outcome(event) if targets else None
        if outcome is not None:
            name, payload = outcome
            self.server.emit(name, payload, to=targets, namespace="/", ignore_queue=True)


def _room_of(data: Any, extra: tuple[Any, ...]) -> str | dict[str, Any]:
    """The room a join_room/leave_room names, or the bad_request ack."""
    room = data.get("room") if isinstance(data, dict) and not extra else None
    if room == DASHBOARD or valid_swarm_name(room):
        return str(room)
    return _bad_request(f"send {{room}}: {DASHBOARD!r} or a swarm name")


def register(socketio: SocketIO, node: Node, gate: SocketGate) -> Compat:
    """Add the original dashboard's events to the handlers of namespace ``/``."""
    compat = Compat(socketio, node, gate)

    @socketio.on("ping")
    def on_ping(data: Any = None, *extra: Any) -> dict[str, Any]:
        ping_id = data.get("ping_id") if isinstance(data, dict) else None
        if extra or not (data is None or isinstance(data, dict)) or not (
                ping_id is None or (isinstance(ping_id, str) and len(ping_id) <= _MAX_PING_ID)
                or (isinstance(ping_id, int | float) and not isinstance(ping_id, bool))):
            return _bad_request(f"send {{ping_id}}: a string of at most {_MAX_PING_ID} "
                                "characters, or a number")
        emit("pong", {"ping_id": ping_id, "timestamp": iso(time.time())}, ignore_queue=True)
        return {"ok": True}

    def on_room(event: str, answer: str,
                change: Callable[[str, str], dict[str, Any] | None]) -> None:
        def handle(data: Any = None, *extra: Any) -> dict[str, Any]:
            sid: str = request.sid  # type: ignore[attr-defined]
            room = _room_of(data, extra)
            if isinstance(room, dict):
                return room
            refusal = change(sid, room)
            if refusal is not None and event == "join_room":
                return refusal  # nothing changed: no room_joined
            emit(answer, {"room": room, "client_id": sid, "timestamp": iso(time.time())},
                 ignore_queue=True)
            return refusal or {"ok": True, "room": room}
        socketio.on(event)(handle)

    on_room("join_room", "room_joined", compat.join)
    on_room("leave_room", "room_left", compat.leave)  # answered even if it was not in it
    return compat
