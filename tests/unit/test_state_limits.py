"""Agents and open tasks per swarm are bounded, on both backends (memory, and fakeredis
running ingest.lua), and ingest answers 422 naming the limit."""

from __future__ import annotations

from collections.abc import Callable

import fakeredis
import pytest
from flask import Flask

from swarmdash.eventlog import EventLog, MemoryEventLog, StateLimits
from swarmdash.eventlog.redis import RedisEventLog
from swarmdash.keys import Keys
from tests import statelimits
from tests.statelimits import LogFactory, agent, task


@pytest.fixture(params=["memory", "redis"])
def factory(request: pytest.FixtureRequest) -> LogFactory:
    def build(limits: StateLimits) -> EventLog:
        if request.param == "memory":
            return MemoryEventLog(limits=limits)
        conn = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True,
                                   protocol=2)
        return RedisEventLog(conn, keys=Keys("unit"), limits=limits)
    return build


@pytest.mark.parametrize("check", [statelimits.check_agents_per_swarm,
                                   statelimits.check_open_tasks_per_swarm,
                                   statelimits.check_swarms,
                                   statelimits.check_a_flood_leaves_a_bounded_snapshot])
def test_state_limits(factory: LogFactory, check: Callable[[LogFactory], None]) -> None:
    check(factory)


def test_ingest_refuses_a_batch_past_a_limit_with_422(make_app: Callable[..., Flask]) -> None:
    app = make_app(MAX_AGENTS_PER_SWARM="2", MAX_OPEN_TASKS_PER_SWARM="1")
    http = app.test_client()
    assert http.post("/api/v1/events", json=[agent("a1"), agent("a2")]).status_code == 202
    res = http.post("/api/v1/events", json=[agent("a1", "idle"), agent("a3")])
    assert res.status_code == 422
    body = res.get_json()
    assert body["limit"] == "MAX_AGENTS_PER_SWARM" and body["swarm"] == "alpha"
    assert "MAX_AGENTS_PER_SWARM=2" in body["error"] and "nothing was accepted" in body["error"]
    assert [e["data"]["status"] for e in http.get("/api/v1/snapshot?swarm=alpha")
            .get_json()["agents"]] == ["busy", "busy"]
    assert http.post("/api/v1/events", json=[task("t1", "running")]).status_code == 202
    res = http.post("/api/v1/events", json=[task("t2", "queued")])
    assert res.status_code == 422 and res.get_json()["limit"] == "MAX_OPEN_TASKS_PER_SWARM"
