"""In-memory event log: the embedded default (single node, nothing to install).

Same semantics as the Redis one: stream-style IDs, bounded length, atomic batches,
state per swarm. Uses ``threading.Condition``, which gevent/eventlet make cooperative.
"""

from __future__ import annotations

import bisect
import copy
import threading
import time
from collections import OrderedDict

from ..cursor import ZERO, StreamId, format_id
from ..events import Event
from .base import BatchKey, EventLog, IdempotencyConflict, Snapshot, state_changes
from .limits import StateLimitExceeded, StateLimits


class MemoryEventLog(EventLog):
    embedded = True

    def __init__(self, maxlen: int = 100_000, task_history: int = 200,
                 idempotency_ttl: float = 600.0, idempotency_max_keys: int = 50_000,
                 limits: StateLimits | None = None):
        self._maxlen = maxlen
        self._task_history = task_history
        self._ids: list[StreamId] = []
        self._events: list[Event] = []
        self._last: StreamId = ZERO
        self._trimmed: StreamId = ZERO
        self._swarms: set[str] = set()  # every swarm an event was stored for
        self._agents: dict[str, dict[str, Event]] = {}
        self._tasks: dict[str, dict[str, Event]] = {}
        self._done: dict[str, dict[str, float]] = {}
        self._cond = threading.Condition()
        self._idempotency_ttl = idempotency_ttl
        self._idempotency_max_keys = idempotency_max_keys
        # scope -> key name -> (expiry, digest, ids), oldest first in each scope
        self._seen: dict[str, OrderedDict[str, tuple[float, str, list[str]]]] = {}
        self._limits = limits or StateLimits()

    def _next_id(self) -> StreamId:
        ms = int(time.time() * 1000)
        return (ms, 0) if ms > self._last[0] else (self._last[0], self._last[1] + 1)

    def append_once(self, events: list[Event], key: BatchKey | None
                    ) -> tuple[list[str], bool]:
        with self._cond:
            now = time.monotonic()
            if key is not None:
                seen = self._seen_in(key.scope, now)
                if key.name in seen:
                    _, digest, stored_ids = seen[key.name]
                    if digest != key.digest:
                        raise IdempotencyConflict(key)
                    return list(stored_ids), True
            self._check_limits(events)
            batch: list[Event] = []
            for event in events:
                sid = self._next_id()
                self._last = sid
                self._ids.append(sid)
                batch.append({"id": format_id(sid), **event})
                self._swarms.add(event["swarm"])
            self._events += batch
            for stored, kind, name, finished in state_changes(batch):
                self._apply_state(stored, kind, name, finished)
            ids = [stored["id"] for stored in batch]
            excess = len(self._ids) - self._maxlen
            if excess > 0:
                self._trimmed = self._ids[excess - 1]
                del self._ids[:excess]
                del self._events[:excess]
            self._cond.notify_all()
            if key is not None and self._idempotency_ttl > 0:
                seen = self._seen.setdefault(key.scope, OrderedDict())
                seen[key.name] = (now + self._idempotency_ttl, key.digest, list(ids))
                while len(seen) > self._idempotency_max_keys:
                    seen.popitem(last=False)
            return ids, False

    def _seen_in(self, scope: str, now: float) -> OrderedDict[str, tuple[float, str, list[str]]]:
        """The live idempotency keys of ``scope`` (expired ones of every scope dropped)."""
        for name in list(self._seen):
            entries = self._seen[name]
            while entries and next(iter(entries.values()))[0] <= now:
                entries.popitem(last=False)
            if not entries:
                del self._seen[name]
        return self._seen.get(scope, OrderedDict())

    def _check_limits(self, events: list[Event]) -> None:
        """Refuse a batch that adds agents or open tasks past a swarm's limit (as ingest.lua
        does: only what the batch adds counts, so updates pass a swarm already over it)."""
        new_swarms = list(dict.fromkeys(e["swarm"] for e in events if e["swarm"] not in
                                        self._swarms))
        if new_swarms and len(self._swarms) + len(new_swarms) > self._limits.max_swarms:
            raise StateLimitExceeded("MAX_SWARMS", new_swarms[0], self._limits.max_swarms)
        new_agents: dict[str, set[str]] = {}
        was_open: dict[tuple[str, str], bool] = {}
        now_open: dict[tuple[str, str], bool] = {}
        for event, kind, name, finished in state_changes(events):
            swarm = event["swarm"]
            if kind == "agent":
                if name not in self._agents.get(swarm, {}):
                    new_agents.setdefault(swarm, set()).add(name)
                continue
            key = (swarm, name)
            if key not in was_open:
                was_open[key] = (name in self._tasks.get(swarm, {})
                                 and name not in self._done.get(swarm, {}))
            now_open[key] = not finished
        for swarm, added in new_agents.items():
            if len(self._agents.get(swarm, {})) + len(added) > self._limits.max_agents:
                raise StateLimitExceeded("MAX_AGENTS_PER_SWARM", swarm, self._limits.max_agents)
        opened: dict[str, int] = {}
        for key, is_open in now_open.items():
            opened[key[0]] = opened.get(key[0], 0) + int(is_open) - int(was_open[key])
        for swarm, n in opened.items():
            open_now = len(self._tasks.get(swarm, {})) - len(self._done.get(swarm, {}))
            if n > 0 and open_now + n > self._limits.max_open_tasks:
                raise StateLimitExceeded("MAX_OPEN_TASKS_PER_SWARM", swarm,
                                         self._limits.max_open_tasks)

    def _apply_state(self, event: Event, kind: str, name: str, finished: bool) -> None:
        swarm = event["swarm"]
        if kind == "agent":
            self._agents.setdefault(swarm, {})[name] = event
            return
        tasks = self._tasks.setdefault(swarm, {})
        tasks[name] = event
        done = self._done.setdefault(swarm, {})
        if not finished:
            done.pop(name, None)
            return
        done[name] = event["ts"]
        while len(done) > self._task_history:
            oldest = min(done, key=done.__getitem__)
            del done[oldest]
            tasks.pop(oldest, None)

    def _after(self, after: StreamId, count: int) -> list[Event]:
        start = bisect.bisect_right(self._ids, after)
        return self._events[start:start + count]

    def read(self, after: StreamId, count: int, block_ms: int | None = None) -> list[Event]:
        with self._cond:
            found = self._after(after, count)
            if not found and block_ms:
                self._cond.wait(block_ms / 1000)
                found = self._after(after, count)
            return found

    def tail(self, count: int) -> list[Event]:
        with self._cond:
            return self._events[-count:] if count > 0 else []

    def last_id(self) -> StreamId:
        return self._last

    def trimmed_upto(self) -> StreamId:
        return self._trimmed

    def snapshot(self, swarm: str | None) -> Snapshot:
        with self._cond:
            names = list(self._agents.keys() | self._tasks.keys()) if swarm is None else [swarm]
            return Snapshot(
                cursor=self._last,
                agents={s: copy.copy(self._agents.get(s, {})) for s in names},
                tasks={s: copy.copy(self._tasks.get(s, {})) for s in names},
            )

    def ping(self) -> bool:
        return True
