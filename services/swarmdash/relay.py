"""The relay: stream -> batches -> this node's own clients.

Every node runs one.  It blocks on the event log from its last ID, hands each event to
the local subscription rooms it matches, and emits batches with ``ignore_queue=True``,
so each client gets exactly one copy whichever node ingested the event.  If the store
goes away it backs off and resumes from the same ID.  ``subscribe`` replays what a
client missed and joins it to its room with no duplicate and no hole.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import codec, metrics
from .batching import CLOCK_SLACK_S, Emission, Room, replay_emissions
from .cursor import Cursor, StreamId, event_id
from .eventlog import BackendUnavailable, EventLog, Snapshot
from .events import Event, position_of
from .fanout import Fanout, corked
from .settings import Settings
from .subscription import SubscribeError, Subscription, check_since, scan_since

log = logging.getLogger(__name__)


class _Flight:
    """A snapshot read that other subscribers wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Snapshot | None = None
        self.error: BaseException | None = None


class Relay:
    def __init__(self, settings: Settings, event_log: EventLog, server: Any,
                 sleep: Callable[[float], None], spawn: Callable[..., Any],
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.log = event_log
        self.server = server  # python-socketio Server: emit / enter_room / leave_room
        self.fanout = Fanout(server)
        self.sleep = sleep
        self.spawn = spawn
        self.clock = clock
        self.position: StreamId | None = None
        self.connected = False
        self.rooms: dict[str, Room] = {}
        self._by_swarm: dict[str, dict[str, Room]] = {}  # swarm or "*" -> its rooms by name
        self.clients: dict[str, dict[tuple[str, str | None], Room]] = {}
        self._lock = threading.Lock()
        self._flights: dict[str | None, _Flight] = {}  # snapshots being read, by swarm
        self._flights_lock = threading.Lock()
        self._running = False
        self._woken = False
        self._timer = threading.Event()  # wakes the flush loop before its planned time
        self.flush_at: float | None = None  # when the flush loop plans to wake (None: idle)
        #: When the last read of the log was answered (time.monotonic(); 0.0: never): the
        #: store watch needs no ping of its own to know Redis answers.
        self.answered_at = 0.0
        #: Called with every event read, after its rooms (see legacy.py); under the lock.
        self.listeners: list[Callable[[Event], None]] = []

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        if not self._running:
            self._running = True
            self.spawn(self._read_loop)
            self.spawn(self._flush_loop)

    def stop(self) -> None:
        self._running = False
        self._timer.set()

    # --- the live path ----------------------------------------------------------------
    def _read_loop(self) -> None:
        backoff = 0.1
        s = self.settings
        while self._running:
            try:
                if self.position is None:
                    self.position = self.log.last_id()
                elif not self.connected:
                    self.log.last_id()  # a quick probe, so subscribers need not wait a block
                    log.warning("relay reconnected; resuming after %d-%d", *self.position)
                self.connected = True
                events = self.log.read(self.position, s.relay_read_count, s.relay_block_ms)
                self.answered_at = time.monotonic()
                backoff = 0.1
            except BackendUnavailable as exc:
                self.answered_at = 0.0  # the store watch pings at its next round
                if self.connected:
                    log.warning("relay lost the event log (%s); retrying", exc)
                self.connected = False
                metrics.REDIS_ERRORS.labels(component="relay").inc()
                self._back_off(backoff)
                backoff = min(backoff * 2, s.relay_retry_max_s)
                continue
            except Exception:  # a bug must not kill the relay of a live node
                log.exception("relay read failed")
                self.sleep(backoff)
                backoff = min(backoff * 2, s.relay_retry_max_s)
                continue
            if events:
                with self._lock, corked():  # one write per client for the whole read
                    self._process(events)
                    self._reschedule()

    def wake(self) -> None:
        """The store is back (the store watch saw it): end the relay's back-off now."""
        self._woken = True

    def _back_off(self, seconds: float) -> None:
        """Wait ``seconds`` before the next try, or less if :meth:`wake` is called."""
        deadline = time.monotonic() + seconds
        step = self.settings.flush_tick_ms / 1000
        while self._running and not self._woken and time.monotonic() < deadline:
            self.sleep(min(step, max(0.0, deadline - time.monotonic())))
        self._woken = False

    def _process(self, events: list[Event]) -> None:
        assert self.position is not None
        now = self.clock()
        by_swarm = self._by_swarm
        everything = by_swarm.get("*")
        kinds: dict[str, int] = {}
        for event in events:
            eid = event_id(event)
            prev, self.position = self.position, eid
            kind = event["type"]
            kinds[kind] = kinds.get(kind, 0) + 1
            for rooms in (by_swarm.get(event["swarm"]), everything):
                if not rooms:
                    continue
                for room in rooms.values():  # rooms change only under the lock held here
                    try:
                        if room.sub.matches(event):
                            for emission in room.offer(event, eid, prev, now):
                                self._emit(room, emission, now)
                    except Exception:  # one bad event or room must not stall the others
                        log.exception("relay: room %s failed on event %s", room.name,
                                      event.get("id"))
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("relay: a listener failed on event %s", event.get("id"))
        metrics.relayed(kinds)
        metrics.RELAY_LAG.set(max(0.0, now - self.position[0] / 1000))

    def _next_flush(self) -> float | None:
        """When the flush loop must next wake: the first point of the ``FLUSH_TICK_MS`` grid
        at or after the earliest end of a window that holds events, so that windows ending
        close together share one wake-up; None while nothing waits for its window."""
        first: float | None = None
        for room in self.rooms.values():
            at = room.next_due()
            if at is not None and (first is None or at < first):
                first = at
        if first is None:
            return None
        tick = self.settings.flush_tick_ms / 1000
        # windows end on the grid: half the slack keeps float rounding from adding a tick
        return math.ceil((first - CLOCK_SLACK_S / 2) / tick) * tick

    def _reschedule(self) -> None:
        """Called under the lock once a read's events are in their rooms: wake the flush
        loop if a window that now holds events ends before the loop planned to wake."""
        at = self._next_flush()
        if at is not None and (self.flush_at is None or at < self.flush_at):
            self.flush_at = at
            self._timer.set()

    def _flush_loop(self) -> None:
        """Send the batches whose window has ended. The loop sleeps until the next window
        ends (on the ``FLUSH_TICK_MS`` grid), or, while nothing waits, until a read gives a
        room something to wait for: an idle node does not wake for its timers."""
        tick = self.settings.flush_tick_ms / 1000
        retry_at = 0.0  # after a room failed to flush: not again before this (no busy loop)
        while self._running:
            self._timer.clear()
            with self._lock:
                at = self._next_flush()
                if at is not None and at < retry_at:
                    at = retry_at
                self.flush_at = at
            timed_out = not self._timer.wait(None if at is None else max(0.0, at - self.clock()))
            if not self._running or self.position is None:
                continue
            with self._lock, corked():  # one write per client per wake-up
                now = self.clock()
                if timed_out and at is not None:
                    now = max(now, at)  # a timer may fire a hair before the clock reaches it
                retry_at = 0.0
                for room in list(self.rooms.values()):
                    try:
                        for channel in room.due(now):
                            self._emit(room, room.flush(channel, self.position, now), now)
                    except Exception:  # the timers must keep running for the other rooms
                        log.exception("relay: flushing room %s failed", room.name)
                        retry_at = now + tick

    def _emit(self, room: Room, emission: Emission, now: float) -> None:
        reached = self.fanout.emit(room.name, emission.event, emission.payload)
        metrics.record_emission(emission.event, emission.size, reached,
                                now - emission.oldest_ts)

    # --- subscriptions ------------------------------------------------------------------
    def subscribe(self, sid: str, sub: Subscription, since: Cursor | None) -> dict[str, Any]:
        """Replay what ``sid`` missed since ``since`` and join it to the room of ``sub``.

        Without ``since``, or when what followed it cannot be replayed (trimmed from the
        log, or more than a replay may hold), the client starts from a snapshot, which the
        ack carries; ``gap`` says that ``since`` was not honoured.
        """
        self._admit(sid, sub)
        snapshot: Snapshot | None = None
        try:
            gap = since is not None and check_since(self.log, since)
            if since is None or gap:
                snapshot = self._snapshot(sub.scope)
                since = Cursor.at(snapshot.cursor)
            joined = self._catch_up_and_join(sid, sub, since)
            while joined is None:  # too much to replay: start over from a snapshot
                gap, snapshot = True, self._snapshot(sub.scope)
                joined = self._catch_up_and_join(sid, sub, Cursor.at(snapshot.cursor))
        except BackendUnavailable as exc:
            raise SubscribeError("unavailable", str(exc)) from None
        room, count, cursor = joined
        ack: dict[str, Any] = {"ok": True, "rooms": [room.name], "cursor": cursor,
                               "replayed": count, "gap": gap}
        if snapshot is not None:
            ack["snapshot"] = snapshot.view(sub.agent_id)
        return ack

    def _admit(self, sid: str, sub: Subscription) -> None:
        """Refuse a subscription over the limits, or while the event log is unreachable."""
        s = self.settings
        held = self.clients.get(sid, {})
        if sub.identity not in held and len(held) >= s.max_subscriptions:
            raise SubscribeError("too_many_subscriptions",
                                 f"at most {s.max_subscriptions} subscriptions per client")
        existing = self.rooms.get(sub.room)
        if existing and sid not in existing.members and len(existing.members) >= s.max_room_size:
            raise SubscribeError("room_full", f"room holds {s.max_room_size} clients")
        if self.position is None or not self.connected:
            raise SubscribeError("unavailable", "the event log is unreachable; retry")

    def _snapshot(self, swarm: str | None) -> Snapshot:
        """One read of a swarm's snapshot for every subscriber asking at the same time: a
        burst of dashboards subscribing shares it (each then catches up from its cursor)."""
        with self._flights_lock:
            flight = self._flights.get(swarm)
            leader = flight is None
            if flight is None:
                flight = self._flights[swarm] = _Flight()
        if leader:
            try:
                flight.result = self.log.snapshot(swarm)
            except BaseException as exc:
                flight.error = exc
            finally:
                with self._flights_lock:
                    del self._flights[swarm]
                flight.done.set()
        else:
            flight.done.wait()
        if flight.error is not None:
            raise flight.error
        assert flight.result is not None
        return flight.result

    def _wait_for(self, target: StreamId) -> None:
        deadline = time.monotonic() + max(5.0, self.settings.relay_block_ms / 1000 * 2)
        while self.position is None or self.position < target:
            if time.monotonic() > deadline:
                raise SubscribeError("unavailable", "this node's relay is behind; retry")
            self.sleep(0.005)

    def _catch_up_and_join(self, sid: str, sub: Subscription,
                           since: Cursor) -> tuple[Room, int, str] | None:
        """Read what was missed (outside the lock), then replay and join (under it).

        At most REPLAY_SCAN_LIMIT entries of the log are read, whatever the filter: past
        that (or past REPLAY_LIMIT matching events, or MAX_QUEUE_BYTES of them) the answer
        is None, a snapshot instead.  The room may hold events waiting for their window.
        Events the client lacks are replayed only up to the room's delivered position of
        each channel; the rest reach it with the room's next flush.  If the client is
        *ahead* of the room (it comes from a node that flushed earlier), the room flushes
        that channel now, so the client never gets an event twice.
        """
        s = self.settings
        self._wait_for(since.base)
        keys = (*sub.channels, "alert")
        fetched = since.lowest
        missed: list[Event] = []
        missed_bytes = scanned = 0
        while True:
            with self._lock:
                assert self.position is not None
                room = self.rooms.get(sub.room)
                head = self.position
                now = self.clock()
                if room is not None:
                    for k in sub.channels:
                        if since.position(k) > room.position(k, head):
                            self._emit(room, room.flush(k, head, now), now)
                targets = {k: room.position(k, head) if room else head for k in keys}
                if fetched >= max(targets.values()):
                    return self._join(sid, sub, room, missed, targets)
            if scanned >= s.replay_scan_limit:  # a sparse filter must not make us read the stream
                return None
            found = scan_since(self.log, sub, since.advanced(fetched),
                               s.replay_limit + 1 - len(missed), page=s.relay_read_count,
                               scan_limit=min(s.relay_read_count, s.replay_scan_limit - scanned))
            scanned += found.scanned
            # at the end of the log (trimmed, or caught up) the room's positions are reached
            fetched = max(found.position, *targets.values()) if found.end else found.position
            missed += found.events
            missed_bytes += sum(len(codec.dumps(event)) for event in found.events)
            if len(missed) > s.replay_limit or missed_bytes > s.max_queue_bytes:
                return None

    def _join(self, sid: str, sub: Subscription, room: Room | None, missed: list[Event],
              targets: dict[str, StreamId]) -> tuple[Room, int, str]:
        """Called with the lock held: emit the replay, then enter the room, atomically.

        Returns the room, the number of events replayed and the client's cursor.
        """
        assert self.position is not None
        if not self.server.manager.is_connected(sid, "/"):
            # it left while its replay was being read: joining now would leave a dead member
            raise SubscribeError("disconnected", "the client disconnected during subscribe")
        now = self.clock()
        if room is None:
            room = Room(sub, self.settings.batch_windows, self.settings.max_batch_size,
                        self.settings.coalesce_agent_updates)
            self.rooms[room.name] = room
            self._by_swarm.setdefault(sub.swarm, {})[room.name] = room
        replay = [e for e in missed if event_id(e) <= targets[position_of(e, sub.channels)]]
        cursor = Cursor.from_positions(self.position, {
            k: v for k, v in targets.items() if v < self.position}).encode()
        for emission in replay_emissions(sub, replay, cursor, now, self.settings.max_batch_size):
            self.server.emit(emission.event, emission.payload, to=sid, namespace="/",
                             ignore_queue=True)
        metrics.EVENTS_REPLAYED.inc(len(replay))
        held = self.clients.setdefault(sid, {})
        old = held.get(sub.identity)
        if old is not None and old is not room:
            self._leave(sid, old)
        held[sub.identity] = room
        room.members.add(sid)
        self.server.enter_room(sid, room.name, namespace="/")
        self.fanout.joined(room.name)
        return room, len(replay), cursor

    def unsubscribe(self, sid: str, swarm: str, agent_id: str | None) -> list[str]:
        with self._lock:
            room = self.clients.get(sid, {}).pop((swarm, agent_id), None)
            if room is None:
                return []
            self._leave(sid, room)
            return [room.name]

    def release(self, sid: str, identities: Iterable[tuple[str, str | None]]) -> str | None:
        """End these subscriptions of ``sid`` with nothing of theirs left undelivered.

        Their rooms first flush what they hold (a window closes early for their other
        members too), so the client has everything up to one stream position; the
        returned cursor of that position lets a new subscription of the same client go on
        without a hole or a duplicate.  None when the relay has read nothing yet.
        """
        with self._lock:
            if self.position is None:
                return None
            head, now = self.position, self.clock()
            held = self.clients.get(sid, {})
            for identity in identities:
                room = held.pop(identity, None)
                if room is None:
                    continue
                for channel in sorted(room.sub.channels):
                    if room.position(channel, head) < head:
                        self._emit(room, room.flush(channel, head, now), now)
                self._leave(sid, room)
            return Cursor.at(head).encode()

    def disconnect(self, sid: str) -> None:
        with self._lock:
            for room in self.clients.pop(sid, {}).values():
                self._leave(sid, room, connected=False)

    def _leave(self, sid: str, room: Room, connected: bool = True) -> None:
        room.members.discard(sid)
        if connected:  # a disconnected sid has left its rooms; a call would go to the queue
            self.fanout.left(room.name, sid)
            with contextlib.suppress(KeyError, ValueError):
                self.server.leave_room(sid, room.name, namespace="/")
        if not room.members:
            self.rooms.pop(room.name, None)
            self.fanout.closed(room.name)
            rooms = self._by_swarm.get(room.sub.swarm)
            if rooms is not None:
                rooms.pop(room.name, None)
                if not rooms:
                    del self._by_swarm[room.sub.swarm]

    def subscribers(self) -> dict[str, int]:
        """Clients per swarm subscription on this node (bounded by the rooms that exist)."""
        counts: dict[str, int] = {}
        for room in self.rooms.values():
            counts[room.sub.swarm] = counts.get(room.sub.swarm, 0) + len(room.members)
        return counts

