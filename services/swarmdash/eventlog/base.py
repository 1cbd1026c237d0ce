"""The interface every event log implements (Redis Streams, or in-memory when embedded)."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..cursor import StreamId, format_id, parse_id
from ..events import TASK_FINISHED, Event


class IdempotencyConflict(ValueError):
    """The idempotency key already names a different batch: nothing was written."""

    def __init__(self, key: BatchKey):
        self.key = key
        super().__init__(f"Idempotency-Key {key.name!r} was already used for a different "
                         f"batch; nothing was accepted (use a new key for a new batch)")


@dataclass(frozen=True)
class BatchKey:
    """An idempotency key as stored: the client's ``name``, scoped to the API key that sent
    it (``scope``), with the ``digest`` of the batch it names.

    A key names one batch of one API key: another key's batch under the same name is
    stored on its own, and a different batch under a name already used is refused.
    """

    scope: str
    name: str
    digest: str


@dataclass
class Snapshot:
    """Current agents and tasks, consistent with ``cursor`` (the last event they include)."""

    cursor: StreamId
    agents: dict[str, dict[str, Event]] = field(default_factory=dict)  # swarm -> id -> event
    tasks: dict[str, dict[str, Event]] = field(default_factory=dict)

    def view(self, agent_id: str | None = None) -> dict[str, Any]:
        """JSON form: ``{cursor, agents: [...], tasks: [...]}``, oldest update first."""
        def rows(by_swarm: dict[str, dict[str, Event]]) -> list[Event]:
            found = [e for events in by_swarm.values() for e in events.values()
                     if agent_id is None or e["agent_id"] == agent_id]
            return sorted(found, key=lambda e: parse_id(e["id"]))
        return {"cursor": format_id(self.cursor), "agents": rows(self.agents),
                "tasks": rows(self.tasks)}


def state_field(event: Event) -> tuple[str, str, bool] | None:
    """(kind, hash field, finished) when the event updates agent or task state."""
    if event["type"] == "agent":
        return "agent", event["agent_id"], False
    if event["type"] == "task":
        status = event["data"]["status"]
        return "task", str(event["data"]["task_id"]), status in TASK_FINISHED
    return None


def state_changes(events: Iterable[Event]) -> Iterator[tuple[Event, str, str, bool]]:
    """(event, kind, hash field, finished) of each event that updates agent or task state."""
    for event in events:
        target = state_field(event)
        if target is not None:
            yield (event, *target)


class EventLog(abc.ABC):
    """Append-only, ordered log of events with per-swarm state.

    Every returned event carries its ``id`` (a stream ID string).
    """

    embedded: bool = False

    def append(self, events: list[Event], idempotency_key: BatchKey | None = None
               ) -> list[str]:
        """Append atomically (all or none) and update state; return the ids."""
        return self.append_once(events, idempotency_key)[0]

    @abc.abstractmethod
    def append_once(self, events: list[Event], key: BatchKey | None
                    ) -> tuple[list[str], bool]:
        """Append like :meth:`append`, at most once per ``key``.

        A batch stored under the same key within the idempotency TTL is not stored again:
        its ids come back with ``True``. This makes a retry after an ambiguous failure (the
        connection dropped after Redis had run the append) safe. A key already used for a
        batch of another digest raises :class:`IdempotencyConflict`. Each scope keeps at
        most IDEMPOTENCY_MAX_KEYS keys: beyond it the oldest is forgotten.
        """

    @abc.abstractmethod
    def read(self, after: StreamId, count: int, block_ms: int | None = None) -> list[Event]:
        """Events with id > ``after``, oldest first; optionally wait up to ``block_ms``."""

    @abc.abstractmethod
    def tail(self, count: int) -> list[Event]:
        """The newest ``count`` events, oldest first."""

    @abc.abstractmethod
    def last_id(self) -> StreamId:
        """ID of the newest event ever appended ((0, 0) when none)."""

    @abc.abstractmethod
    def trimmed_upto(self) -> StreamId:
        """Highest ID no longer kept: a cursor below it has a gap."""

    def bounds(self) -> tuple[StreamId, StreamId]:
        """(:meth:`trimmed_upto`, :meth:`last_id`), read together where the store allows."""
        return self.trimmed_upto(), self.last_id()

    @abc.abstractmethod
    def snapshot(self, swarm: str | None) -> Snapshot:
        """State of one swarm (``None``: all), read atomically with its cursor."""

    @abc.abstractmethod
    def ping(self) -> bool:
        """True when the store answers."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
