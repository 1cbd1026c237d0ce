"""The state limits' contract, shared by the unit tests (memory log, fakeredis running the
Lua) and the integration test (a real redis-server): both backends must agree."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from swarmdash.eventlog import EventLog, StateLimitExceeded, StateLimits

#: ``factory(limits)`` -> an empty event log enforcing them.
LogFactory = Callable[[StateLimits], EventLog]
_ts = itertools.count(1)


def agent(agent_id: str, status: str = "busy", swarm: str = "alpha") -> dict[str, Any]:
    return {"type": "agent", "swarm": swarm, "agent_id": agent_id, "ts": float(next(_ts)),
            "data": {"status": status}}


def task(task_id: str, status: str, swarm: str = "alpha") -> dict[str, Any]:
    return {"type": "task", "swarm": swarm, "agent_id": "a1", "ts": float(next(_ts)),
            "data": {"task_id": task_id, "status": status}}


def state(log: EventLog, swarm: str = "alpha") -> tuple[dict[str, str], dict[str, str]]:
    """(agent -> status, task -> status) of ``swarm``."""
    view = log.snapshot(swarm).view()
    return ({e["agent_id"]: e["data"]["status"] for e in view["agents"]},
            {e["data"]["task_id"]: e["data"]["status"] for e in view["tasks"]})


def refused(log: EventLog, batch: list[dict[str, Any]], setting: str, limit: int) -> None:
    """``batch`` is refused naming ``setting``, and nothing of it is stored."""
    before, last = state(log), log.last_id()
    with pytest.raises(StateLimitExceeded) as caught:
        log.append(batch)
    assert caught.value.setting == setting and caught.value.limit == limit
    assert f"{setting}={limit}" in str(caught.value)
    assert log.last_id() == last, "a refused batch must not reach the stream"
    assert state(log) == before, "a refused batch must not change the state"


def check_agents_per_swarm(factory: LogFactory) -> None:
    log = factory(StateLimits(max_agents=3, max_open_tasks=100))
    log.append([agent("a1", "idle"), agent("a2"), agent("a3")])
    refused(log, [agent("a1", "busy"), agent("a4")], "MAX_AGENTS_PER_SWARM", 3)
    log.append([agent("a1", "offline"), agent("a2", "idle")])  # updates still pass
    log.append([agent("a4", swarm="beta")])  # each swarm has its own limit
    assert state(log)[0] == {"a1": "offline", "a2": "idle", "a3": "busy"}
    log2 = factory(StateLimits(max_agents=2, max_open_tasks=100))
    log2.append([agent("x"), agent("x", "idle"), agent("y")])  # one agent counted once


def check_open_tasks_per_swarm(factory: LogFactory) -> None:
    log = factory(StateLimits(max_agents=100, max_open_tasks=2))
    log.append([task("t1", "queued"), task("t2", "running")])
    refused(log, [task("t3", "running")], "MAX_OPEN_TASKS_PER_SWARM", 2)
    log.append([task("t1", "running"), task("t2", "completed"), task("t3", "queued")])
    assert state(log)[1] == {"t1": "running", "t2": "completed", "t3": "queued"}
    refused(log, [task("t2", "running")], "MAX_OPEN_TASKS_PER_SWARM", 2)  # reopening counts
    # a batch that finishes one and opens another stays within the limit
    log.append([task("t1", "completed"), task("t4", "running"), task("t4", "completed"),
                task("t5", "running")])
    assert {t for t, s in state(log)[1].items() if s in ("queued", "running")} == {"t3", "t5"}


def log_event(swarm: str) -> dict[str, Any]:
    return {"type": "log", "swarm": swarm, "agent_id": "a1", "ts": float(next(_ts)),
            "data": {"level": "info", "message": "hello"}}


def check_swarms(factory: LogFactory) -> None:
    """Every swarm an event was sent for counts, whatever the event's type."""
    log = factory(StateLimits(max_agents=100, max_open_tasks=100, max_swarms=2))
    log.append([log_event("alpha"), agent("b1", swarm="beta")])
    last = log.last_id()
    with pytest.raises(StateLimitExceeded) as caught:
        log.append([log_event("alpha"), log_event("gamma"), log_event("delta")])
    assert caught.value.setting == "MAX_SWARMS" and caught.value.swarm == "gamma"
    assert "MAX_SWARMS=2" in str(caught.value) and log.last_id() == last
    log.append([log_event("alpha"), agent("b2", swarm="beta")])  # known swarms still pass


def check_a_flood_leaves_a_bounded_snapshot(factory: LogFactory) -> None:
    """The audit's case: one key creating thousands of agents and tasks in a few requests."""
    log = factory(StateLimits(max_agents=50, max_open_tasks=80))
    refusals = 0
    for n in range(10):
        for batch in ([agent(f"flood-{n}-{i}") for i in range(30)],
                      [task(f"flood-{n}-{i}", "running") for i in range(30)]):
            try:
                log.append(batch)
            except StateLimitExceeded:
                refusals += 1
    agents, tasks = state(log)
    assert len(agents) == 30 and len(tasks) == 60, "whole batches stored up to the limits"
    assert refusals == 9 + 8
