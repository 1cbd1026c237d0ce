"""The original SwarmBot dashboard's client (tests/js/swarmbot-dashboard.mjs, the official
socket.io-client) through HAProxy in front of three nodes: it never subscribes, and gets
every event published on another node once, task_completed / task_failed, and its pongs."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from swarmdash.localcluster import LocalCluster
from tests.helpers import ROOT, wait_for
from tests.integration.test_cluster import post

pytestmark = pytest.mark.integration
CLIENT = ROOT / "tests" / "js" / "swarmbot-dashboard.mjs"
SWARM = "swarmbot"


@pytest.fixture
def legacy_client(local_cluster: LocalCluster) -> Iterator[subprocess.Popen[str]]:
    node = shutil.which("node")
    assert node, "Node.js is needed for the official client (tests/run.sh installs it)"
    proc = subprocess.Popen([node, str(CLIENT), local_cluster.http_url, SWARM, "10", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield proc
    proc.kill()
    proc.communicate(timeout=10)


def node_holding_the_default(cluster: LocalCluster) -> str | None:
    """The address of the node on which one client holds an all-swarms subscription."""
    nodes = requests.get(f"{cluster.http_url}/api/v1/cluster", timeout=5).json()["nodes"]
    holding = [n["address"] for n in nodes if n["clients_per_swarm"].get("*") == 1]
    return holding[0] if len(holding) == 1 else None


def events(n: int) -> list[dict[str, Any]]:
    """Agent, task and metric events of SWARM: what the original page listens for."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        out += [{"type": "agent", "swarm": SWARM, "agent_id": f"bot-{i}",
                 "data": {"status": "busy"}},
                {"type": "metric", "swarm": SWARM, "agent_id": f"bot-{i}",
                 "data": {"name": "cpu", "value": 40 + i, "unit": "%"}}]
    return out


def test_the_original_dashboard_is_served_as_it_is(
        local_cluster: LocalCluster, legacy_client: subprocess.Popen[str]) -> None:
    address = wait_for(lambda: node_holding_the_default(local_cluster), 30,
                       message="the client's default subscription in the cluster registry")
    other = next(n for n in local_cluster.running_nodes()
                 if not address.startswith(n.host + ":"))
    url = local_cluster.node_url(other)
    first = post(url, events(3))
    tasks = post(url, [
        {"type": "task", "swarm": SWARM, "agent_id": "bot-0",
         "data": {"task_id": "t-1", "status": "running"}},
        {"type": "task", "swarm": SWARM, "agent_id": "bot-0",
         "data": {"task_id": "t-1", "status": "completed", "duration_ms": 840,
                  "result": {"pages": 2}}},
        {"type": "task", "swarm": SWARM, "agent_id": "bot-1",
         "data": {"task_id": "t-2", "status": "failed", "error": "timeout"}},
        {"type": "task", "swarm": SWARM, "agent_id": "bot-2",
         "data": {"task_id": "t-3", "status": "completed"}},
        {"type": "log", "swarm": SWARM, "agent_id": "bot-2",  # the page has no log listener
         "data": {"level": "info", "message": "done"}}])
    assert first.status_code == tasks.status_code == 202, (first.text, tasks.text)
    ids = first.json()["ids"] + tasks.json()["ids"][:4]
    out, err = legacy_client.communicate(timeout=90)
    assert legacy_client.returncode == 0, err + out[-3000:]
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    summary = lines[-1]
    assert summary["transport"] == "websocket"
    assert Counter(summary["ids"]) == Counter(ids), "every event exactly once"
    finished = {f["task_id"]: f for f in summary["finished"]}
    assert sorted(f["name"] for f in summary["finished"]) == [
        "task_completed", "task_completed", "task_failed"]
    assert finished["t-1"]["duration_ms"] == 840 and finished["t-1"]["result"] == {"pages": 2}
    assert finished["t-1"]["agent_id"] == "bot-0" and finished["t-1"]["id"] == ids[7]
    assert finished["t-2"]["error"] == "timeout" and finished["t-2"]["traceback"] is None
    assert finished["t-3"]["result"] is None
    assert all(p["ping_id"].startswith("quality_") for p in summary["pongs"])
    assert summary["rooms"] == [["joined", SWARM], ["left", SWARM]]
    assert not [line for line in lines if line.get("connect_error")]
