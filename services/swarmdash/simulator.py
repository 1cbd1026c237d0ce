"""A realistic swarm: agents change status, run tasks, emit metrics and logs, sometimes fail.

:class:`SwarmSimulator` only makes events; a sink sends them (HTTP for ``swarmdash
simulate``, the node's own event log for ``swarmdash demo``).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .events import Event

ROLES = ("planner", "researcher", "coder", "reviewer", "tester")
METRICS = (("cpu", "%"), ("memory", "MB"), ("tokens_per_s", "tok/s"))
NEXT_STATUS = {"idle": "busy", "busy": "processing", "processing": "waiting",
               "waiting": "idle", "error": "offline", "offline": "idle"}


@dataclass
class _Agent:
    swarm: str
    agent_id: str
    role: str
    status: str = "idle"
    task_id: str | None = None
    cpu: float = 20.0


@dataclass
class SwarmSimulator:
    swarms: int = 3
    agents: int = 50
    error_rate: float = 0.01
    seed: int | None = None
    _rng: random.Random = field(init=False)
    _agents: list[_Agent] = field(init=False)
    _tasks: itertools.count[int] = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._tasks = itertools.count(1)
        names = [f"swarm-{i + 1}" for i in range(self.swarms)]
        self._agents = [
            _Agent(names[i % self.swarms], f"agent-{i + 1:04d}", self._rng.choice(ROLES))
            for i in range(self.agents)]

    @property
    def swarm_names(self) -> list[str]:
        return sorted({a.swarm for a in self._agents})

    def roster(self) -> list[Event]:
        """One agent event per agent: the swarm as it starts."""
        return [self._agent_event(a) for a in self._agents]

    def _agent_event(self, a: _Agent) -> Event:
        data: dict[str, Any] = {"status": a.status, "role": a.role}
        if a.task_id:
            data["task_id"] = a.task_id
        return {"type": "agent", "swarm": a.swarm, "agent_id": a.agent_id, "data": data}

    def _event(self, kind: str, a: _Agent, data: dict[str, Any]) -> Event:
        return {"type": kind, "swarm": a.swarm, "agent_id": a.agent_id, "data": data}

    def step(self) -> list[Event]:
        """A few causally related events of one random agent."""
        rng = self._rng
        a = rng.choice(self._agents)
        out: list[Event] = []
        roll = rng.random()
        if roll < self.error_rate and a.status not in ("error", "offline"):
            a.status = "error"
            out.append(self._agent_event(a))
            out.append(self._event("log", a, {"level": "error",
                                              "message": f"{a.agent_id} crashed on {a.task_id}"}))
            if a.task_id:
                out.append(self._event("task", a, {"task_id": a.task_id, "status": "failed"}))
                a.task_id = None
            if rng.random() < 0.3:
                out.append(self._event("alert", a, {"severity": "critical",
                                                    "message": f"{a.agent_id} is failing"}))
            return out
        if roll < 0.35:
            a.status = NEXT_STATUS[a.status]
            if a.status == "busy":
                a.task_id = f"task-{next(self._tasks)}"
                out.append(self._event("task", a, {"task_id": a.task_id, "status": "queued"}))
                out.append(self._event("task", a, {"task_id": a.task_id, "status": "running"}))
            elif a.status == "idle" and a.task_id:
                out.append(self._event("task", a, {"task_id": a.task_id, "status": "completed"}))
                a.task_id = None
            out.append(self._agent_event(a))
        elif roll < 0.8:
            name, unit = rng.choice(METRICS)
            a.cpu = min(100.0, max(0.0, a.cpu + rng.gauss(0, 8)))
            value = a.cpu if name == "cpu" else round(rng.uniform(100, 4000), 1)
            out.append(self._event("metric", a, {"name": name, "value": round(value, 2),
                                                 "unit": unit}))
        else:
            level = rng.choices(("debug", "info", "warning"), (2, 6, 1))[0]
            out.append(self._event("log", a, {"level": level,
                                              "message": f"{a.role} {a.agent_id}: {a.status}"}))
        return out

    def run(self, send: Callable[[list[Event]], None], *, rate: float, duration: float | None,
            batch_interval: float = 0.1, progress: Callable[[int, float], None] | None = None,
            sleep: Callable[[float], None] = time.sleep,
            should_stop: Callable[[], bool] = lambda: False) -> int:
        """Send about ``rate`` events/s in batches every ``batch_interval`` s; return the count."""
        send(self.roster())
        sent, start, owed = len(self._agents), time.monotonic(), 0.0
        next_tick = start
        while not should_stop():
            now = time.monotonic()
            if duration is not None and now - start >= duration:
                break
            owed += rate * batch_interval
            batch: list[Event] = []
            while owed >= 1:
                produced = self.step()
                batch.extend(produced)
                owed -= len(produced)
            if batch:
                send(batch)
                sent += len(batch)
            if progress:
                progress(sent, now - start)
            next_tick += batch_interval
            sleep(max(0.0, next_tick - time.monotonic()))
        return sent
