"""The cluster registry: which nodes are alive, where they are, who is connected to them.

Every node writes a heartbeat record every ``HEARTBEAT_INTERVAL`` seconds: its name,
address, version, start time and clients per swarm. A node is *live* while its
``alive`` key (TTL ``HEARTBEAT_TTL``) exists, so a node that dies drops out within the TTL
without anyone cleaning up. The last record of every node is kept for
``TARGET_RETENTION`` seconds more so that Prometheus keeps scraping a dead node and sees
``up == 0`` instead of the node silently vanishing from its targets.

:class:`MemoryRegistry` serves the embedded single-node mode; :class:`RedisRegistry` is
shared by every node of a cluster.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import redis

from .keys import Keys
from .storeerror import redis_errors

Record = dict[str, Any]


class Registry(ABC):
    """A store that cannot answer raises :class:`~.storeerror.BackendUnavailable`."""

    @abstractmethod
    def beat(self, record: Record, ttl: float) -> None:
        """Publish this node's record; it counts as live for ``ttl`` seconds."""

    @abstractmethod
    def leave(self, node: str) -> None:
        """A node stopping on purpose: no longer live at once (its record stays a target)."""

    @abstractmethod
    def records(self) -> list[tuple[Record, bool]]:
        """Every known record with whether its node is live, sorted by node name."""

    @abstractmethod
    def forget(self, nodes: list[str]) -> None:
        """Drop the records of ``nodes`` (past their retention)."""

    def live(self) -> list[Record]:
        return [rec for rec, alive in self.records() if alive]

    def targets(self, retention: float, now: float | None = None) -> list[Record]:
        """Records of nodes live or seen within ``retention`` seconds; forget older ones."""
        now = time.time() if now is None else now
        keep: list[Record] = []
        old: list[Record] = []
        for rec, alive in self.records():
            (keep if alive or now - float(rec.get("ts", 0)) <= retention else old).append(rec)
        if old:
            self.forget([str(rec["node"]) for rec in old])
        return keep


class MemoryRegistry(Registry):
    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._records: dict[str, Record] = {}
        self._until: dict[str, float] = {}

    def beat(self, record: Record, ttl: float) -> None:
        self._records[record["node"]] = dict(record)
        self._until[record["node"]] = self.clock() + ttl

    def leave(self, node: str) -> None:
        self._until.pop(node, None)

    def records(self) -> list[tuple[Record, bool]]:
        now = self.clock()
        return [(rec, self._until.get(name, 0.0) > now)
                for name, rec in sorted(self._records.items())]

    def forget(self, nodes: list[str]) -> None:
        for name in nodes:
            self._records.pop(name, None)
            self._until.pop(name, None)


class RedisRegistry(Registry):
    """Records in one hash, liveness in a key per node (TTL); Redis errors raise
    :class:`~.storeerror.BackendUnavailable`."""

    def __init__(self, conn: redis.Redis, keys: Keys | None = None):
        self.redis = conn
        self.keys = keys or Keys()

    @redis_errors()
    def beat(self, record: Record, ttl: float) -> None:
        name = record["node"]
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.cluster_nodes, name, json.dumps(record, separators=(",", ":")))
        pipe.set(self.keys.node_alive(name), "1", px=max(1, int(ttl * 1000)))
        pipe.execute()

    @redis_errors()
    def leave(self, node: str) -> None:
        self.redis.delete(self.keys.node_alive(node))

    @redis_errors()
    def records(self) -> list[tuple[Record, bool]]:
        raw: dict[str, str] = self.redis.hgetall(self.keys.cluster_nodes)  # type: ignore[assignment]
        names = sorted(raw)
        if not names:
            return []
        alive = self.redis.mget([self.keys.node_alive(n) for n in names])
        out = []
        for name, flag in zip(names, alive, strict=True):
            try:
                rec = json.loads(raw[name])
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append((rec, flag is not None))
        return out

    @redis_errors()
    def forget(self, nodes: list[str]) -> None:
        if nodes:
            self.redis.hdel(self.keys.cluster_nodes, *nodes)


def summary(live: list[Record]) -> dict[str, Any]:
    """The cluster as ``GET /api/v1/cluster`` shows it: live nodes and the totals."""
    per_swarm: dict[str, int] = {}
    now = time.time()
    live = [{**rec, "uptime": round(now - float(rec.get("started", now)), 3)} for rec in live]
    for rec in live:
        for swarm, n in (rec.get("clients_per_swarm") or {}).items():
            per_swarm[swarm] = per_swarm.get(swarm, 0) + int(n)
    return {
        "nodes": live,
        "totals": {
            "nodes": len(live),
            "clients": sum(int(rec.get("clients", 0)) for rec in live),
            "clients_per_swarm": dict(sorted(per_swarm.items())),
        },
    }


def prometheus_targets(records: list[Record]) -> list[dict[str, Any]]:
    """Prometheus HTTP service discovery: one target group per node."""
    return [{"targets": [str(rec["address"])], "labels": {"node": str(rec["node"])}}
            for rec in records if rec.get("address")]
