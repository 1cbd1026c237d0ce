"""Shared fixtures of the unit tests: no network, no real Redis (fakeredis runs the Lua)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
from flask import Flask

from swarmdash.app import create_app
from swarmdash.eventlog import EventLog, MemoryEventLog
from swarmdash.eventlog.redis import RedisEventLog
from swarmdash.keys import Keys
from swarmdash.node import Node, node_of
from swarmdash.settings import Settings, load_settings
from tests import helpers

#: A port nothing listens on: connecting to it is refused at once.
CLOSED_URL = "redis://127.0.0.1:1/0"

_seq = itertools.count(1)


def _event(kind: str, swarm: str = "alpha", agent_id: str = "a1", ts: float | None = None,
           **data: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind, "swarm": swarm, "agent_id": agent_id, "data": data}
    event["ts"] = float(next(_seq)) if ts is None else ts
    return event


def _agent(agent_id: str = "a1", status: str = "busy", swarm: str = "alpha",
           **kw: Any) -> dict[str, Any]:
    return _event("agent", swarm, agent_id, status=status, **kw)


def _task(task_id: str, status: str, agent_id: str = "a1", swarm: str = "alpha",
          **kw: Any) -> dict[str, Any]:
    return _event("task", swarm, agent_id, task_id=task_id, status=status, **kw)


def _metric(name: str = "cpu", value: float = 0.5, agent_id: str = "a1",
            swarm: str = "alpha", **kw: Any) -> dict[str, Any]:
    return _event("metric", swarm, agent_id, name=name, value=value, **kw)


def _log(message: str = "hello", level: str = "info", agent_id: str = "a1",
         swarm: str = "alpha", **kw: Any) -> dict[str, Any]:
    return _event("log", swarm, agent_id, level=level, message=message, **kw)


def _alert(message: str = "fire", severity: str = "critical", agent_id: str = "a1",
           swarm: str = "alpha", **kw: Any) -> dict[str, Any]:
    return _event("alert", swarm, agent_id, severity=severity, message=message, **kw)


class EventFactory:
    """Builds valid raw events (``ts`` is a fresh, increasing number unless given)."""

    event = staticmethod(_event)
    agent = staticmethod(_agent)
    task = staticmethod(_task)
    metric = staticmethod(_metric)
    log = staticmethod(_log)
    alert = staticmethod(_alert)


@pytest.fixture
def ev() -> type[EventFactory]:
    return EventFactory


#: In-process conditions change fast: poll often, give up after 5 s.
_wait_for = functools.partial(helpers.wait_for, timeout=5.0, interval=0.005)


@pytest.fixture
def closed_url() -> str:
    return CLOSED_URL


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    return _wait_for


# --- event logs --------------------------------------------------------------------------

@pytest.fixture
def fake_redis() -> Iterator[fakeredis.FakeRedis]:
    server = fakeredis.FakeServer()
    conn = fakeredis.FakeRedis(server=server, decode_responses=True, protocol=2)
    yield conn
    conn.close()


def make_log(kind: str, conn: fakeredis.FakeRedis | None, *, maxlen: int = 100_000,
             task_history: int = 200, idempotency_max_keys: int = 50_000) -> EventLog:
    if kind == "memory":
        return MemoryEventLog(maxlen=maxlen, task_history=task_history,
                              idempotency_max_keys=idempotency_max_keys)
    assert conn is not None
    return RedisEventLog(conn, keys=Keys("unit"), maxlen=maxlen, task_history=task_history,
                         idempotency_max_keys=idempotency_max_keys)


@pytest.fixture(params=["memory", "redis"])
def log_factory(request: pytest.FixtureRequest,
                fake_redis: fakeredis.FakeRedis) -> Callable[..., EventLog]:
    """``log_factory(maxlen=..., task_history=...)``: the same contract on both backends."""
    kind = request.param

    def build(**kw: Any) -> EventLog:
        return make_log(kind, fake_redis if kind == "redis" else None, **kw)

    return build


# --- the app -----------------------------------------------------------------------------

#: Fast relay, small windows: the socket tests wait on conditions, never on sleeps.
FAST = {
    "NODE_ID": "unit-node",
    # A node in production mode needs a real secret; auth has its own tests (test_auth*.py).
    "SECRET_KEY": "unit-test-secret-0123456789abcdef0123456789",
    "AUTH_DISABLED": "true",
    "LOG_LEVEL": "warning",
    "RELAY_BLOCK_MS": "50",
    "FLUSH_TICK_MS": "5",
    "BATCH_WINDOW_AGENT_MS": "0",
    "BATCH_WINDOW_TASK_MS": "0",
    "BATCH_WINDOW_METRIC_MS": "0",
    "BATCH_WINDOW_LOG_MS": "0",
}


def settings_with(**env: str) -> Settings:
    return load_settings(environ={**FAST, **env}, env_file=None)


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    """``make_app(event_log=None, **ENV)``: an in-process node; its relay is stopped after."""
    nodes: list[Node] = []

    def build(event_log: EventLog | None = None, **env: str) -> Flask:
        app = create_app(settings_with(**env), async_mode="threading", event_log=event_log)
        app.config["TESTING"] = True
        nodes.append(node_of(app))
        return app

    yield build
    for node in nodes:
        node.stopping = True
        node.relay.stop()
        node.event_log.close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def node(app: Flask) -> Node:
    return node_of(app)
