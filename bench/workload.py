"""The published workload: swarms of agents sending status changes, task updates, metrics,
logs and alerts at fixed rates. The same generator exists in JavaScript
(``peers/node/publish.mjs``) so every system under test receives the same stream.

Every event carries ``data.seq`` (a counter per swarm, so receivers check completeness) and
``data.sent`` (epoch milliseconds at publish, so receivers measure latency).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

STATUSES = ("idle", "busy", "processing", "waiting")
TASK_STATUSES = ("queued", "running", "completed")
TYPES = ("agent", "task", "metric", "log", "alert")


@dataclass(frozen=True)
class Workload:
    agents: int = 1000
    swarms: int = 10
    agent_rate: float = 2.0   # status changes per agent per second
    task_rate: float = 0.5    # task updates per agent per second
    metric_rate: float = 1.0  # metrics per agent per second
    log_rate: float = 0.5     # log lines per agent per second
    alert_rate: float = 10.0  # alerts per second, whole system (immediate events)
    tick_ms: int = 50         # the publisher sends what is due every tick

    def rates(self) -> dict[str, float]:
        """Events per second of each type, whole system."""
        return {"agent": self.agents * self.agent_rate, "task": self.agents * self.task_rate,
                "metric": self.agents * self.metric_rate, "log": self.agents * self.log_rate,
                "alert": self.alert_rate}

    @property
    def total_rate(self) -> float:
        return sum(self.rates().values())

    def swarm_names(self) -> list[str]:
        return [f"swarm-{i + 1}" for i in range(self.swarms)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Generator:
    """Yields the events due since the last call; deterministic apart from the clock."""

    def __init__(self, workload: Workload):
        self.w = workload
        self.owed = dict.fromkeys(TYPES, 0.0)
        self.next_agent = dict.fromkeys(TYPES, 0)
        self.seq = dict.fromkeys(workload.swarm_names(), 0)
        self.per_type = dict.fromkeys(TYPES, 0)
        self.counter = 0

    def _event(self, kind: str, now_ms: float) -> dict[str, Any]:
        index = self.next_agent[kind] % self.w.agents
        self.next_agent[kind] += 1
        swarm = f"swarm-{index % self.w.swarms + 1}"
        self.seq[swarm] += 1
        self.counter += 1
        n = self.counter
        data: dict[str, Any]
        if kind == "agent":
            data = {"status": STATUSES[n % len(STATUSES)]}
        elif kind == "task":
            data = {"task_id": f"task-{index}-{n % 7}", "status": TASK_STATUSES[n % 3]}
        elif kind == "metric":
            data = {"name": "cpu", "value": float(n % 100), "unit": "%"}
        elif kind == "log":
            data = {"level": "info", "message": f"agent-{index} step {n}"}
        else:
            data = {"severity": "warning", "message": f"agent-{index} queue is growing"}
        data["seq"] = self.seq[swarm]
        data["sent"] = now_ms
        self.per_type[kind] += 1
        return {"type": kind, "swarm": swarm, "agent_id": f"agent-{index}", "ts": now_ms / 1000,
                "data": data}

    def due(self, elapsed_s: float) -> list[dict[str, Any]]:
        """The events owed after ``elapsed_s`` more seconds, stamped now."""
        out: list[dict[str, Any]] = []
        now_ms = time.time() * 1000
        for kind, rate in self.w.rates().items():
            self.owed[kind] += rate * elapsed_s
            while self.owed[kind] >= 1:
                self.owed[kind] -= 1
                out.append(self._event(kind, now_ms))
        return out

    def summary(self) -> dict[str, Any]:
        return {"published": self.counter, "per_swarm": dict(self.seq),
                "per_type": dict(self.per_type)}
