"""The Python publisher: agents write to the Redis event log, or POST to a node, with the
same validation.

    from swarmdash import Publisher
    pub = Publisher("redis://127.0.0.1:6379/0")            # straight to Redis
    pub = Publisher(url="https://dash.example.com", api_key="sdk_...")  # through the API
    pub.agent("alpha", "agent-7", "busy", task_id="t-1")
    pub.publish([{"type": "log", "swarm": "alpha", "agent_id": "agent-7",
                  "data": {"level": "info", "message": "started"}}])

Invalid events raise :class:`~swarmdash.events.ValidationError` (nothing written);
an unreachable Redis or node raises :class:`~swarmdash.eventlog.BackendUnavailable` (retry);
an idempotency key already used for another batch raises
:class:`~swarmdash.eventlog.IdempotencyConflict` (nothing written);
a refused API key raises :class:`~swarmdash.auth.AuthError` (401 unknown, 403 swarm).
Over HTTP the key defaults to ``PUBLISH_API_KEY``. Writing to Redis needs no key (Redis
access is trusted); an ``api_key`` given there is checked against ``API_KEYS`` and its
swarms, as a node would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .auth.apikeys import ApiKey, AuthError, KeyRing
from .backends import open_event_log
from .eventlog import BackendUnavailable, BatchKey, EventLog, IdempotencyConflict
from .events import ValidationError, batch_digest, valid_idempotency_key, validate_batch
from .ratelimit import ANONYMOUS
from .settings import Settings, load_settings


@dataclass(frozen=True)
class PublishResult:
    accepted: int
    cursor: str
    ids: list[str]
    duplicate: bool = False


class Publisher:
    def __init__(self, redis_url: str | None = None, *, url: str | None = None,
                 api_key: str | None = None, settings: Settings | None = None,
                 event_log: EventLog | None = None, timeout: float = 10.0):
        base = settings or load_settings()
        self.settings = base
        self.url = url.rstrip("/") if url else None
        self.timeout = timeout
        self.key: ApiKey | None = None
        self.log: EventLog | None = None
        if self.url:  # through a node's HTTP API
            self.api_key = api_key or base.publish_api_key or None
            return
        if redis_url is not None:
            base = base.replace(redis_url=redis_url)
        if event_log is None and base.embedded:
            raise ValueError("Publisher needs a Redis URL (argument or REDIS_URL) or url=")
        self.settings = base
        self.api_key = api_key
        if api_key is not None and not base.auth_disabled:
            self.key = KeyRing.from_entries(base.api_keys).authenticate(api_key)
            if self.key is None:
                raise AuthError(401, "unknown API key (not in API_KEYS)")
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
        if self.url:
            return self._post(events, idempotency_key)  # as given: a retry has the same digest
        if self.key is not None:
            denied = sorted({e["swarm"] for e in valid if not self.key.allows(e["swarm"])})
            if denied:
                raise AuthError(403, f"API key {self.key.id!r} may not publish to swarm(s) "
                                     f"{', '.join(denied)}")
        assert self.log is not None
        # Scoped like the HTTP API: to the API key, or to the key-less publishers together.
        scope = self.key.id if self.key is not None else ANONYMOUS
        batch = None if idempotency_key is None else BatchKey(
            scope, idempotency_key, batch_digest(events))
        ids, duplicate = self.log.append_once(valid, batch)
        return PublishResult(len(ids), ids[-1], ids, duplicate)

    def _post(self, events: dict[str, Any] | list[dict[str, Any]], idempotency_key: str | None
              ) -> PublishResult:
        import requests

        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            r = requests.post(f"{self.url}/api/v1/events", json=events, headers=headers,
                              timeout=self.timeout)
        except requests.RequestException as exc:
            raise BackendUnavailable(str(exc)) from exc
        try:
            body = r.json()
        except ValueError:
            body = {"error": r.text[:300]}
        if r.status_code == 202:
            return PublishResult(body["accepted"], body["cursor"], body["ids"],
                                 bool(body.get("duplicate")))
        message = str(body.get("error", f"HTTP {r.status_code}"))
        if r.status_code in (401, 403):
            raise AuthError(r.status_code, message)
        if r.status_code == 409 and idempotency_key:
            raise IdempotencyConflict(BatchKey("", idempotency_key, ""))
        if r.status_code == 400 and "errors" in body:
            raise ValidationError(body["errors"])
        if r.status_code in (429, 502, 503, 504):
            raise BackendUnavailable(message)
        raise ValueError(f"refused by {self.url}: HTTP {r.status_code} {message}")

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
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
