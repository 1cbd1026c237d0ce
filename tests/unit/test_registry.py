"""The cluster registry: live nodes by heartbeat TTL, totals, Prometheus targets."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import fakeredis
import pytest
from flask import Flask

from swarmdash.keys import Keys
from swarmdash.node import Node
from swarmdash.registry import (
    MemoryRegistry,
    RedisRegistry,
    Registry,
    prometheus_targets,
    summary,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def rec(name: str, clients: int = 0, ts: float = 1_000_000.0, **per_swarm: int) -> dict[str, Any]:
    return {"node": name, "address": f"10.0.0.{name[-1]}:8050", "version": "x",
            "clients": clients, "clients_per_swarm": per_swarm, "ts": ts}


@pytest.fixture(params=["memory", "redis"])
def registry(request: pytest.FixtureRequest, fake_redis: fakeredis.FakeRedis) -> Registry:
    if request.param == "memory":
        return MemoryRegistry()
    return RedisRegistry(fake_redis, Keys("unit"))


def test_a_node_is_live_while_its_heartbeat_lasts(registry: Registry,
                                                  wait_for: Callable[..., Any]) -> None:
    registry.beat(rec("n1"), ttl=60)
    registry.beat(rec("n2"), ttl=0.2)
    assert [r["node"] for r in registry.live()] == ["n1", "n2"]
    wait_for(lambda: [r["node"] for r in registry.live()] == ["n1"], timeout=5,
             message="n2 to expire")


def test_leaving_drops_out_at_once_but_stays_a_target(registry: Registry) -> None:
    registry.beat(rec("n1", ts=time.time()), ttl=60)
    registry.leave("n1")
    assert registry.live() == []
    assert [t["node"] for t in registry.targets(retention=600)] == ["n1"]


def test_targets_keep_dead_nodes_for_the_retention_then_forget_them(registry: Registry) -> None:
    now = time.time()
    for name, age in (("n1", 700), ("n2", 100)):
        registry.beat(rec(name, ts=now - age), ttl=60)
        registry.leave(name)  # stopped heartbeating `age` seconds ago
    registry.beat(rec("n3", ts=now), ttl=60)
    targets = registry.targets(retention=600, now=now)
    assert [t["node"] for t in targets] == ["n2", "n3"]
    assert [r["node"] for r, _ in registry.records()] == ["n2", "n3"]  # n1 forgotten


def test_a_newer_heartbeat_replaces_the_record(registry: Registry) -> None:
    registry.beat(rec("n1", clients=1), ttl=60)
    registry.beat(rec("n1", clients=7), ttl=60)
    assert [r["clients"] for r in registry.live()] == [7]


def test_memory_registry_follows_its_clock() -> None:
    clock = Clock()
    reg = MemoryRegistry(clock)
    reg.beat(rec("n1"), ttl=10)
    clock.now += 9.9
    assert len(reg.live()) == 1
    clock.now += 0.2
    assert reg.live() == []


def test_redis_registry_ignores_a_corrupt_record(fake_redis: fakeredis.FakeRedis) -> None:
    reg = RedisRegistry(fake_redis, Keys("unit"))
    reg.beat(rec("n1"), ttl=60)
    fake_redis.hset(Keys("unit").cluster_nodes, "bad", "{not json")
    assert [r["node"] for r in reg.live()] == ["n1"]


def test_summary_adds_clients_across_nodes() -> None:
    out = summary([rec("n1", 3, alpha=2, beta=1), rec("n2", 4, alpha=4)])
    assert out["totals"] == {"nodes": 2, "clients": 7, "clients_per_swarm": {"alpha": 6, "beta": 1}}
    assert [n["node"] for n in out["nodes"]] == ["n1", "n2"]


def test_prometheus_targets_are_http_sd_groups() -> None:
    assert prometheus_targets([rec("n1"), {"node": "noaddr"}]) == [
        {"targets": ["10.0.0.1:8050"], "labels": {"node": "n1"}}]


def test_the_cluster_api_lists_this_node_with_its_clients(app: Flask, node: Node,
                                                          wait_for: Callable[..., Any]) -> None:
    http = app.test_client()
    wait_for(lambda: http.get("/api/v1/cluster").get_json()["totals"]["nodes"] == 1,
             timeout=5, message="the first heartbeat")
    body = http.get("/api/v1/cluster").get_json()
    (me,) = body["nodes"]
    assert me["node"] == "unit-node" and me["address"] == "127.0.0.1:8050"
    assert me["version"] and me["uptime"] >= 0
    targets = http.get("/api/v1/cluster/targets").get_json()
    assert targets == [{"targets": ["127.0.0.1:8050"], "labels": {"node": "unit-node"}}]


def test_the_cluster_api_says_503_when_the_registry_is_unreachable(
        make_app: Callable[..., Flask], closed_url: str) -> None:
    app = make_app(REDIS_URL=closed_url, REDIS_TIMEOUT="0.2")
    for path in ("/api/v1/cluster", "/api/v1/cluster/targets"):
        resp = app.test_client().get(path)
        assert resp.status_code == 503
        assert "registry unavailable" in resp.get_json()["error"]
        assert resp.headers["Retry-After"] == "1"


def test_fallback_polls_are_counted(app: Flask) -> None:
    from swarmdash import metrics

    before = metrics.FALLBACK_POLLS._value.get()
    http = app.test_client()
    assert http.get("/api/v1/events?swarm=*").status_code == 200
    assert http.get("/api/v1/events?swarm=*",
                    headers={"X-Swarmdash-Mode": "fallback"}).status_code == 200
    assert metrics.FALLBACK_POLLS._value.get() == before + 1


def test_advertised_address_defaults_to_host_and_port() -> None:
    from swarmdash.settings import load_settings

    s = load_settings(environ={"HOST": "127.0.1.3", "PORT": "9000"}, env_file=None)
    assert s.advertised_address == "127.0.1.3:9000"
    s = load_settings(environ={"NODE_ADDRESS": "node-7:8050"}, env_file=None)
    assert s.advertised_address == "node-7:8050"
    s = load_settings(environ={"HOST": "0.0.0.0", "PORT": "8050"}, env_file=None)
    assert s.advertised_address.endswith(":8050") and not s.advertised_address.startswith("0.")


def test_heartbeat_ttl_must_outlast_the_interval() -> None:
    from swarmdash.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="HEARTBEAT_TTL=2 must be longer"):
        load_settings(environ={"HEARTBEAT_INTERVAL": "2", "HEARTBEAT_TTL": "2"}, env_file=None)
