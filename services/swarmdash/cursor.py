"""Stream IDs and the resume cursor.

An event's ``id`` is its Redis Stream ID (``<ms>-<seq>``).  A cursor says how far a
subscription has been delivered.  Because channels are flushed on different windows, a
subscription can be further along for agent updates than for logs, so the cursor keeps
one position per channel key: ``<base>`` alone when all are equal, otherwise
``<base>;log=<id>;metric=<id>`` listing the keys that are behind ``base``.  Clients treat
it as an opaque string that is valid on every node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .events import ALERT, CHANNELS, Event

StreamId = tuple[int, int]
ZERO: StreamId = (0, 0)
KEYS = (*CHANNELS, ALERT)
_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")
_MAX_PART = 2**64 - 1  # each half of a Redis stream ID is an unsigned 64-bit integer


def parse_id(text: str) -> StreamId:
    match = _ID.fullmatch(text)
    if not match:
        raise ValueError(f"invalid stream id {text[:40]!r}")
    sid = int(match.group(1)), int(match.group(2) or 0)
    if sid[0] > _MAX_PART or sid[1] > _MAX_PART:
        raise ValueError(f"invalid stream id {text[:40]!r}: out of range")
    return sid


def format_id(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


def event_id(event: Event) -> StreamId:
    """The stream position of an event read from the log (an ID the store wrote: the
    relay's hot path splits it without :func:`parse_id`'s checks)."""
    ms, _, seq = event["id"].partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True)
class Cursor:
    """Per-key positions; a key missing from ``behind`` is at ``base``."""

    base: StreamId
    behind: tuple[tuple[str, StreamId], ...] = ()

    def position(self, key: str) -> StreamId:
        for name, sid in self.behind:
            if name == key:
                return sid
        return self.base

    @property
    def lowest(self) -> StreamId:
        return min([self.base, *(sid for _, sid in self.behind)])

    def advanced(self, upto: StreamId) -> Cursor:
        """Every key moved up to at least ``upto`` (all events up to it were delivered)."""
        base = max(self.base, upto)
        return Cursor.from_positions(base, {k: max(self.position(k), upto) for k in KEYS})

    @classmethod
    def at(cls, sid: StreamId) -> Cursor:
        return cls(sid)

    @classmethod
    def from_positions(cls, base: StreamId, positions: Mapping[str, StreamId]) -> Cursor:
        behind = tuple(sorted((k, v) for k, v in positions.items() if v < base))
        return cls(base, behind)

    def encode(self) -> str:
        parts = [format_id(self.base)]
        parts.extend(f"{key}={format_id(sid)}" for key, sid in self.behind)
        return ";".join(parts)

    @classmethod
    def decode(cls, text: str) -> Cursor:
        if not isinstance(text, str) or not text or len(text) > 512:
            raise ValueError("cursor must be a non-empty string")
        head, *rest = text.split(";")
        base = parse_id(head)
        behind: dict[str, StreamId] = {}
        for part in rest:
            key, sep, value = part.partition("=")
            if not sep or key not in KEYS or key in behind:
                raise ValueError(f"invalid cursor part {part[:40]!r}")
            sid = parse_id(value)
            if sid > base:
                raise ValueError("invalid cursor: a channel is ahead of the base")
            behind[key] = sid
        return cls.from_positions(base, behind)
