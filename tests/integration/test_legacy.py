"""Clients that never subscribe (the original SwarmBot dashboard's way), python-socketio on
real nodes of every engine sharing one redis-server, with auth on: the default subscription
holds the token's swarms only, events published on another node arrive once, and a client
that subscribes itself in time gets no default subscription."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import DashClient, Node, NodeGroup, viewer_token, wait_for

from .conftest import ENGINES, Cluster
from .test_cluster import post

pytestmark = pytest.mark.integration


def held(node_url: str, since: float = 0.0) -> dict[str, int] | None:
    """Clients per swarm subscription of one node, from its record in the cluster registry
    (None while that record is older than ``since``, epoch seconds)."""
    headers = {"Authorization": f"Bearer {viewer_token()}"}
    nodes = requests.get(f"{node_url}/api/v1/cluster", headers=headers, timeout=5).json()["nodes"]
    here = requests.get(f"{node_url}/health", timeout=5).json()["node"]
    record = next(n for n in nodes if n["node"] == here)
    per_swarm: dict[str, int] = record["clients_per_swarm"]
    return per_swarm if record["ts"] > since else None


def arrivals(client: DashClient) -> Counter[str]:
    return Counter(e["id"] for e in client.delivered())


def finished(client: DashClient) -> list[tuple[str, str]]:
    return [(name, data["task_id"]) for name, data in client.events()
            if name in ("task_completed", "task_failed")]


@pytest.mark.parametrize("index", range(len(ENGINES)), ids=ENGINES)
def test_a_client_that_never_subscribes_gets_its_tokens_swarms_once(
        cluster: Cluster, clients: list[DashClient], index: int) -> None:
    mine, other = f"legacy-{ENGINES[index]}", f"legacy-{ENGINES[index]}-other"
    node = cluster.nodes[index]
    client = DashClient(node.url, token=viewer_token([mine])).connect()
    clients.append(client)
    client.sio.emit("ping", {"ping_id": "p-1"})
    wait_for(lambda: client.events("pong"), 10, message="pong")
    assert client.events("pong")[0][1]["ping_id"] == "p-1"
    wait_for(lambda: (held(node.url) or {}).get(mine) == 1, 20,
             message="the default subscription")
    elsewhere = cluster.nodes[(index + 1) % len(cluster.nodes)].url
    res = post(elsewhere, [
        {"type": "agent", "swarm": mine, "agent_id": "bot-1", "data": {"status": "busy"}},
        {"type": "agent", "swarm": other, "agent_id": "bot-2", "data": {"status": "busy"}},
        {"type": "task", "swarm": mine, "agent_id": "bot-1",
         "data": {"task_id": "t-1", "status": "completed", "duration_ms": 5}},
        {"type": "task", "swarm": other, "agent_id": "bot-2",
         "data": {"task_id": "t-2", "status": "failed", "error": "boom"}},
        {"type": "log", "swarm": mine, "agent_id": "bot-1",
         "data": {"level": "info", "message": "last"}}])
    assert res.status_code == 202, res.text
    ids = res.json()["ids"]
    wanted = Counter([ids[0], ids[2], ids[4]])
    wait_for(lambda: arrivals(client) == wanted and finished(client), 15,
             message=f"the events of {mine}")
    assert finished(client) == [("task_completed", "t-1")]
    assert other not in {e["swarm"] for e in client.delivered()}
    # a room of a swarm the token does not list is refused, and changes nothing
    ack = client.sio.call("join_room", {"room": other}, timeout=10)
    assert ack["ok"] is False and ack["error"] == "forbidden", ack
    asked = time.time()
    assert other not in (wait_for(lambda: held(node.url, asked), 15, message="a new record"))


def test_a_client_that_subscribes_in_time_gets_no_default_subscription(
        cluster: Cluster, clients: list[DashClient]) -> None:
    swarm = "legacy-explicit"
    node = cluster.nodes[2]
    subscriber = DashClient(node.url).connect()
    clients.append(subscriber)
    assert subscriber.subscribe(swarm=swarm, channels=["agent", "task"])["ok"]
    witness = DashClient(node.url).connect()  # once it holds its default, the time is up
    clients.append(witness)
    now = time.time()
    counts = wait_for(lambda: (held(node.url, now) or {}).get("*") and held(node.url, now), 20,
                      message="the witness's default")
    assert counts.get(swarm) == 1, counts
    res = post(cluster.nodes[0].url, [
        {"type": "agent", "swarm": swarm, "agent_id": "bot-1", "data": {"status": "idle"}},
        {"type": "task", "swarm": swarm, "agent_id": "bot-1",
         "data": {"task_id": "t-9", "status": "completed"}}])
    assert res.status_code == 202, res.text
    ids = res.json()["ids"]
    wait_for(lambda: arrivals(witness)[ids[1]] == 1 and finished(witness), 15,
             message="the witness got them")
    assert finished(witness) == [("task_completed", "t-9")]
    wait_for(lambda: arrivals(subscriber) == Counter(ids), 15, message="the subscriber's")
    assert finished(subscriber) == [], "no default subscription: our protocol only"


@pytest.fixture
def node_without_default(cluster: Cluster, node_factory: NodeGroup,
                         tmp_path: Path) -> Iterator[Node]:
    node = node_factory.start("node-nodefault", "gevent", auth=True, log_dir=tmp_path,
                              DEFAULT_SUBSCRIPTION="none", DEFAULT_SUBSCRIPTION_AFTER_MS="50")
    yield node
    node.process.stop()


def test_default_subscription_none_leaves_a_silent_client_without_events(
        node_without_default: Node, clients: list[DashClient]) -> None:
    url = node_without_default.url
    started = time.time()
    silent = DashClient(url).connect()
    watcher = DashClient(url).connect()
    clients += [silent, watcher]
    assert watcher.subscribe(swarm="*")["ok"]
    res = post(url, [{"type": "agent", "swarm": "legacy-none", "agent_id": "bot-1",
                      "data": {"status": "busy"}}])
    assert res.status_code == 202, res.text

    wait_for(lambda: arrivals(watcher), 15, message="the subscriber's event")
    # a record written 20 grace times after both connected: the watcher's subscription only
    assert wait_for(lambda: held(url, started + 1.0), 15, message="a new record") == {"*": 1}
    assert silent.delivered() == []
