"""Batching for one subscription room: windows, leading-edge flush, coalescing.

Pure logic with the clock passed in, so it is tested deterministically.  A room groups
the local clients that subscribed to the same (swarm, agent filter, channels); it keeps a
buffer per channel and the position up to which each channel has been delivered, from
which the resume cursor of every batch is computed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .cursor import Cursor, StreamId
from .events import (
    AGENT_CRITICAL,
    ALERT,
    BATCH_EVENTS,
    SYSTEM_ALERT,
    Event,
    is_critical,
)
from .subscription import Subscription

#: Seconds: a moment this close before a window's end counts as its end, so that float
#: rounding never makes one window end twice nor a timer find its window not yet over.
CLOCK_SLACK_S = 0.001


@dataclass
class Emission:
    event: str
    payload: dict[str, Any]
    size: int = 1
    oldest_ts: float = 0.0


@dataclass
class Room:
    sub: Subscription
    windows: dict[str, float]
    max_batch: int
    coalesce: bool
    members: set[str] = field(default_factory=set)
    _lists: dict[str, list[Event]] = field(default_factory=dict)
    _latest: dict[str, dict[str, Event]] = field(default_factory=dict)  # coalesced agents
    _coalesced: int = 0
    _lag: dict[str, StreamId] = field(default_factory=dict)
    _ends: dict[str, float] = field(default_factory=dict)  # end of each last batch's window

    def __post_init__(self) -> None:
        for channel in self.sub.channels:
            if channel == "agent" and self.coalesce:
                self._latest[channel] = {}
            else:
                self._lists[channel] = []

    @property
    def name(self) -> str:
        return self.sub.room

    def _pending(self, channel: str) -> int:
        if channel in self._latest:
            return len(self._latest[channel])
        return len(self._lists.get(channel, ()))

    def position(self, channel: str, head: StreamId) -> StreamId:
        """Everything of ``channel`` (a position of the cursor) up to this ID has been
        emitted to the room."""
        return self._lag.get(channel, head)

    def cursor(self, head: StreamId) -> str:
        return Cursor.from_positions(head, self._lag).encode()

    def offer(self, event: Event, eid: StreamId, prev: StreamId, now: float) -> list[Emission]:
        """Take one event (already known to match); return what must be emitted now.

        The relay calls this for every event and room, so it is written for speed: an
        event that does not go out at once advances the position of its own type."""
        name = at_once(event)
        if name is not None:
            out: list[Emission] = []
            if agents_first(event, self.sub) and self._pending("agent"):
                out.append(self.flush("agent", prev, now))
            out.append(immediate(name, self.sub, event, self.cursor(eid)))
            return out
        channel = event["type"]  # position_of() of an event that waits for its batch
        latest = self._latest.get(channel)
        if latest is not None:
            if not latest:
                self._lag[channel] = prev
            agent = event["agent_id"]
            if agent in latest:
                del latest[agent]
                self._coalesced += 1
            latest[agent] = event
            pending = len(latest)
        else:
            waiting = self._lists[channel]
            if not waiting:
                self._lag[channel] = prev
            waiting.append(event)
            pending = len(waiting)
        if now + CLOCK_SLACK_S >= self._ends.get(channel, 0.0) or pending >= self.max_batch:
            return [self.flush(channel, eid, now)]
        return []

    def window_end(self, channel: str, last: float) -> float:
        """The end of the window in which ``channel`` last sent a batch (at ``last``).

        Windows are slots of the clock: an agent window of 200 ms ends at every multiple of
        200 ms since the epoch. So a room's channels, every room and every node end their
        windows at the same moments: the batches due for one client leave together, in one
        write, and the flush timer wakes a few times a second instead of once per window."""
        window = self.windows[channel]
        if window <= 0:
            return last
        return (math.floor((last + CLOCK_SLACK_S) / window) + 1) * window

    def due(self, now: float) -> list[str]:
        """Channels whose window has passed and that hold events."""
        ends = self._ends
        return [c for c in self.sub.channels  # the very test of next_due(): no rounding apart
                if self._pending(c) and now + CLOCK_SLACK_S >= ends.get(c, 0.0)]

    def next_due(self) -> float | None:
        """When the first channel holding events reaches the end of its window (the time
        :meth:`due` starts naming it); None when nothing waits."""
        first: float | None = None
        for channel in self.sub.channels:
            if self._pending(channel):
                at = self._ends.get(channel, 0.0)
                if first is None or at < first:
                    first = at
        return first

    def flush(self, channel: str, head: StreamId, now: float) -> Emission:
        if channel in self._latest:
            batch = list(self._latest[channel].values())
            self._latest[channel] = {}
        else:
            batch = self._lists[channel]
            self._lists[channel] = []
        coalesced = 0
        if channel == "agent":  # the count belongs to the agent buffer only
            coalesced, self._coalesced = self._coalesced, 0
        self._lag.pop(channel, None)
        self._ends[channel] = self.window_end(channel, now)
        payload = batch_payload(self.sub, channel, batch, self.cursor(head), now)
        if coalesced:
            payload["coalesced"] = coalesced
        return Emission(BATCH_EVENTS[channel], payload, len(batch),
                        min((e["ts"] for e in batch), default=now))


def at_once(event: Event) -> str | None:
    """Alerts and critical agent updates go out at once, each on its own, under this
    event name; None for the events that wait for their channel's batch."""
    if event["type"] == ALERT:
        return SYSTEM_ALERT
    return AGENT_CRITICAL if is_critical(event) else None


def agents_first(event: Event, sub: Subscription) -> bool:
    """A critical agent update must not overtake the agent updates before it: the agent
    batch waiting in ``sub`` goes out first."""
    return event["type"] == "agent" and "agent" in sub.channels


def immediate(name: str, sub: Subscription, event: Event, cursor: str,
              replay: bool = False) -> Emission:
    """The emission of an event that goes out at once (see :func:`at_once`)."""
    payload = {**event, "cursor": cursor}
    if replay:
        payload["replay"] = True
    payload["subscription"] = sub.label
    return Emission(name, payload, 1, event["ts"])


def batch_payload(sub: Subscription, channel: str, batch: list[Event], cursor: str,
                  now: float, replay: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {"type": channel, "swarm": sub.swarm, "batch": batch,
                               "count": len(batch), "timestamp": now, "cursor": cursor}
    if sub.agent_id is not None:
        payload["agent_id"] = sub.agent_id
    if replay:
        payload["replay"] = True
    return payload


def replay_emissions(sub: Subscription, events: Iterable[Event], cursor: str, now: float,
                     max_batch: int) -> list[Emission]:
    """Missed events as the usual batch/immediate events, in stream order per channel.

    Every emission carries the cursor the client reaches once the replay is complete.
    """
    out: list[Emission] = []
    buffers: dict[str, list[Event]] = {}

    def flush(channel: str) -> None:
        batch = buffers.pop(channel, [])
        if batch:
            out.append(Emission(BATCH_EVENTS[channel],
                                batch_payload(sub, channel, batch, cursor, now, replay=True),
                                len(batch)))

    for event in events:
        name = at_once(event)
        if name is not None:
            if agents_first(event, sub):
                flush("agent")
            out.append(immediate(name, sub, event, cursor, replay=True))
            continue
        buffers.setdefault(event["type"], []).append(event)
        if len(buffers[event["type"]]) >= max_batch:
            flush(event["type"])
    for channel in list(buffers):
        flush(channel)
    return out
