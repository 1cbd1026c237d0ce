"""The original SwarmBot dashboard's client (tests/js/swarmbot-dashboard.mjs, the official
socket.io-client) through HAProxy in front of three nodes: it never subscribes, and gets
every event published on another node once, task_completed / task_failed, and its pongs;
after a dropped connection it reconnects by itself and gets a new default subscription."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from swarmdash.cluster.local import LocalCluster
from tests.helpers import ROOT, wait_for
from tests.integration.test_cluster import post

pytestmark = pytest.mark.integration
CLIENT = ROOT / "tests" / "js" / "swarmbot-dashboard.mjs"
SWARM = "swarmbot"


@dataclass
class Run:
    """The client's process and the JSON lines it printed so far (read by a thread)."""

    proc: subprocess.Popen[str]
    lines: list[dict[str, Any]] = field(default_factory=list)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def seen(self, key: str) -> list[dict[str, Any]]:
        return [line for line in list(self.lines) if key in line]


ROUND_ONE = 6  # events of the first round; the client drops its connection after them


@pytest.fixture
def legacy_client(local_cluster: LocalCluster) -> Iterator[Run]:
    node = shutil.which("node")
    assert node, "Node.js is needed for the official client (tests/run.sh installs it)"
    proc = subprocess.Popen([node, str(CLIENT), local_cluster.http_url, SWARM, "10", "3",
                             str(ROUND_ONE)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = Run(proc)
    reader = threading.Thread(target=run.read, daemon=True)
    reader.start()
    yield run
    proc.kill()
    proc.wait(10)
    reader.join(10)


def node_holding_the_default(cluster: LocalCluster, since: float = 0.0) -> str | None:
    """The address of the node on which one client holds an all-swarms subscription, by
    node records written after ``since`` (epoch seconds)."""
    nodes = requests.get(f"{cluster.http_url}/api/v1/cluster", timeout=5).json()["nodes"]
    if not all(n["ts"] > since for n in nodes):
        return None
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
        local_cluster: LocalCluster, legacy_client: Run) -> None:
    address = wait_for(lambda: node_holding_the_default(local_cluster), 30,
                       message="the client's default subscription in the cluster registry")
    other = next(n for n in local_cluster.running_nodes()
                 if not address.startswith(n.host + ":"))
    url = local_cluster.node_url(other)
    first = post(url, events(3))
    assert first.status_code == 202, first.text
    wait_for(lambda: legacy_client.seen("dropping"), 30, message="the first round and the drop")
    wait_for(lambda: len(legacy_client.seen("connected")) == 2, 30, message="the reconnect")
    reconnected = time.time()
    assert wait_for(lambda: node_holding_the_default(local_cluster, reconnected), 30,
                    message="a new default subscription") == address
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
    assert tasks.status_code == 202, tasks.text
    ids = first.json()["ids"] + tasks.json()["ids"][:4]
    legacy_client.proc.wait(90)
    assert legacy_client.proc.returncode == 0, legacy_client.lines[-20:]
    summary = wait_for(lambda: legacy_client.seen("summary"), 10, message="the summary")[0]
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
    # joined on each connect (rooms end with the connection), left once at the end
    assert summary["rooms"] == [["joined", SWARM], ["joined", SWARM], ["left", SWARM]]
    assert not legacy_client.seen("connect_error")
