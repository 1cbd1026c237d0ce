"""A subscription: what a client watches, how it asks for it, and what it missed.

Both ways of following the event log use this module: the Socket.IO ``subscribe``
(relay.py) and the polling fallback ``GET /api/v1/events`` (api.py).  They parse a
subscription with the same rules and error messages, check a ``since`` cursor against the
log's bounds the same way, and find the events a client lacks with the one
:func:`scan_since`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .cursor import Cursor, StreamId, event_id
from .eventlog import EventLog
from .events import CHANNELS, Event, position_of, valid_agent_id, valid_swarm_name, wanted

#: Log entries one read of a scan asks for, unless the caller says otherwise.
SCAN_PAGE = 1000
_CHANNEL_LIST = ", ".join(CHANNELS)
_FIELDS = ("swarm", "channels", "agent_id", "since")


class BadRequest(ValueError):
    """A request the protocol refuses; the message says what is wrong with it."""


class SubscribeError(Exception):
    """A subscription could not be made; ``code`` goes into the ack's ``error``."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(detail or code)
        self.code = code
        self.detail = detail or code


@dataclass(frozen=True)
class Subscription:
    swarm: str  # a swarm name or "*"
    channels: frozenset[str]
    agent_id: str | None = None

    @property
    def identity(self) -> tuple[str, str | None]:
        """A client holds at most one subscription per (swarm, agent)."""
        return self.swarm, self.agent_id

    @property
    def label(self) -> dict[str, str | None]:
        """Which subscription a message belongs to (an alert may reach several of a client)."""
        return {"swarm": self.swarm, "agent_id": self.agent_id}

    @property
    def room(self) -> str:
        """The Socket.IO room of a node's clients that share this subscription."""
        return f"sub|{self.swarm}|{self.agent_id or ''}|{','.join(sorted(self.channels))}"

    @property
    def scope(self) -> str | None:
        """The swarm whose snapshot this subscription starts from (None: every swarm)."""
        return None if self.swarm == "*" else self.swarm

    def matches(self, event: Event) -> bool:
        return ((self.swarm == "*" or event["swarm"] == self.swarm)
                and (self.agent_id is None or event["agent_id"] == self.agent_id)
                and wanted(event, self.channels))


# --- parsing ------------------------------------------------------------------------------

def subscription(swarm: Any, channels: Any, agent_id: Any) -> Subscription:
    """The subscription these fields name; :class:`BadRequest` says which one is wrong."""
    if swarm != "*" and not valid_swarm_name(swarm):
        raise BadRequest("swarm must be a swarm name or '*'")
    if (not isinstance(channels, list) or not channels
            or not all(isinstance(c, str) for c in channels)):
        raise BadRequest(f"channels must be a non-empty list of {_CHANNEL_LIST}")
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise BadRequest(f"unknown channel(s) {', '.join(unknown)[:100]}; use {_CHANNEL_LIST}")
    if agent_id is not None and not valid_agent_id(agent_id):
        raise BadRequest("agent_id must match [A-Za-z0-9_.:@/-]{1,128}")
    return Subscription(str(swarm), frozenset(channels), agent_id)


def parse_since(text: Any) -> Cursor:
    """The cursor a client sent as ``since``."""
    try:
        return Cursor.decode(text)
    except ValueError as exc:  # the message names the field: "since: invalid stream id"
        raise BadRequest(f"since: {exc}") from None


def from_payload(data: Any, *, unsubscribe: bool = False) -> tuple[Subscription, Cursor | None]:
    """A Socket.IO subscribe (or unsubscribe, whose ``since`` is ignored) payload."""
    if not isinstance(data, dict):
        raise BadRequest("payload must be an object like {swarm, channels, agent_id?, since?}")
    unknown = sorted(str(k)[:32] for k in data if k not in _FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    sub = subscription(data.get("swarm"), data.get("channels", list(CHANNELS)),
                       data.get("agent_id"))
    since = data.get("since")
    if since is None or unsubscribe:
        return sub, None
    return sub, parse_since(since)


def from_query(args: Mapping[str, str]) -> Subscription:
    """The filter of an HTTP query: ``swarm`` (default every one), ``channels`` as a
    comma-separated list (default all), ``agent_id``."""
    channels = [c for c in args.get("channels", "").split(",") if c] or list(CHANNELS)
    return subscription(args.get("swarm", "*") or "*", channels, args.get("agent_id") or None)


# --- what a client missed -----------------------------------------------------------------

#: The error detail of a cursor beyond the end of the log.
AHEAD = "since: cursor is ahead of the stream (not issued here)"


def check_since(log: EventLog, since: Cursor) -> bool:
    """Whether events after ``since`` have been trimmed from the log (a gap).

    A cursor past the log's last event was not issued by this log (the store was emptied,
    say): :class:`SubscribeError` ``invalid_cursor``.
    """
    trimmed, last = log.bounds()
    if since.base > last:
        raise SubscribeError("invalid_cursor", AHEAD)
    return since.lowest < trimmed


@dataclass(frozen=True)
class Scan:
    events: list[Event]  # the matching events, oldest first
    position: StreamId  # the last log entry looked at (or where the scan started)
    scanned: int  # log entries looked at
    end: bool  # the log held nothing after ``position``


def scan_since(log: EventLog, sub: Subscription, since: Cursor, limit: int, *,
               scan_limit: int, page: int = SCAN_PAGE) -> Scan:
    """The events of ``sub`` after ``since`` (per channel), in stream order.

    Stops at ``limit`` events, after ``scan_limit`` log entries however few match, or at
    the end of the log; reads ``page`` entries at a time.  ``since.advanced(position)``
    continues where the scan stopped.
    """
    found: list[Event] = []
    position, scanned = since.lowest, 0
    while scanned < scan_limit:
        want = min(page, scan_limit - scanned)
        batch = log.read(position, want)
        for event in batch:
            eid = event_id(event)
            position = eid
            scanned += 1
            if sub.matches(event) and eid > since.position(position_of(event, sub.channels)):
                found.append(event)
                if len(found) >= limit:
                    return Scan(found, position, scanned, end=False)
        if len(batch) < want:  # a read returns fewer only when the log holds no more
            return Scan(found, position, scanned, end=True)
    return Scan(found, position, scanned, end=False)
