"""The Python publisher: agents write straight to the Redis event log, with the same validation.

    from swarmdash import Publisher
    pub = Publisher("redis://127.0.0.1:6379/0")
    pub.agent("alpha", "agent-7", "busy", task_id="t-1")
    pub.publish([{"type": "log", "swarm": "alpha", "agent_id": "agent-7",
                  "data": {"level": "info", "message": "started"}}])

Invalid events raise :class:`~swarmdash.events.ValidationError` (nothing written);
an unreachable Redis raises :class:`~swarmdash.eventlog.BackendUnavailable` (retry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .eventlog import EventLog, open_event_log
from .events import valid_idempotency_key, validate_batch
from .settings import Settings, load_settings


@dataclass(frozen=True)
class PublishResult:
    accepted: int
    cursor: str
    ids: list[str]
    duplicate: bool = False


class Publisher:
    def __init__(self, redis_url: str | None = None, *, settings: Settings | None = None,
                 event_log: EventLog | None = None):
        base = settings or load_settings()
        if redis_url is not None:
            base = base.replace(redis_url=redis_url)
        if event_log is None and base.embedded:
            raise ValueError("Publisher needs a Redis URL (argument or REDIS_URL)")
        self.settings = base
        self.log = event_log or open_event_log(base)

    def publish(self, events: dict[str, Any] | list[dict[str, Any]], *,
                idempotency_key: str | None = None) -> PublishResult:
        """Validate and store ``events``, all or none.

        With ``idempotency_key``, publishing the same batch again (say, after
        :class:`BackendUnavailable`, when the first attempt may have been stored) stores it
        once; the result then has ``duplicate=True`` and the original ids.
        """
        valid = validate_batch(events, max_events=self.settings.max_events_per_request,
                               max_event_bytes=self.settings.max_event_bytes)
        if idempotency_key is not None and not valid_idempotency_key(idempotency_key):
            raise ValueError("idempotency_key must be 1-128 characters of [A-Za-z0-9_.:-]")
        ids, duplicate = self.log.append_once(valid, idempotency_key)
        return PublishResult(len(ids), ids[-1], ids, duplicate)

    def _one(self, kind: str, swarm: str, agent_id: str, data: dict[str, Any],
             ts: float | None) -> PublishResult:
        event: dict[str, Any] = {"type": kind, "swarm": swarm, "agent_id": agent_id,
                                 "data": data}
        if ts is not None:
            event["ts"] = ts
        return self.publish(event)

    def agent(self, swarm: str, agent_id: str, status: str, *, ts: float | None = None,
              **fields: Any) -> PublishResult:
        return self._one("agent", swarm, agent_id, {"status": status, **fields}, ts)

    def task(self, swarm: str, agent_id: str, task_id: str, status: str, *,
             ts: float | None = None, **fields: Any) -> PublishResult:
        return self._one("task", swarm, agent_id,
                         {"task_id": task_id, "status": status, **fields}, ts)

    def metric(self, swarm: str, agent_id: str, name: str, value: float,
               unit: str | None = None, *, ts: float | None = None) -> PublishResult:
        data: dict[str, Any] = {"name": name, "value": value}
        if unit is not None:
            data["unit"] = unit
        return self._one("metric", swarm, agent_id, data, ts)

    def log_line(self, swarm: str, agent_id: str, level: str, message: str, *,
                 ts: float | None = None, **fields: Any) -> PublishResult:
        return self._one("log", swarm, agent_id, {"level": level, "message": message, **fields},
                         ts)

    def alert(self, swarm: str, agent_id: str, severity: str, message: str, *,
              ts: float | None = None, **fields: Any) -> PublishResult:
        return self._one("alert", swarm, agent_id,
                         {"severity": severity, "message": message, **fields}, ts)

    def close(self) -> None:
        self.log.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
