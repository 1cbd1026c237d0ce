"""The official socket.io-client (JavaScript, under Node.js) against real nodes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from typing import Any

import pytest

from tests.helpers import ROOT, wait_for

from .conftest import Cluster
from .test_cluster import Feed, subscribes_ok

pytestmark = pytest.mark.integration
CLIENT = ROOT / "tests" / "js" / "client.mjs"


def run_js(url: str, swarm: str, count: int, *extra: str,
           env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    node = shutil.which("node")
    assert node, "Node.js is needed for the official client (tests/run.sh installs it)"
    assert (CLIENT.parent / "node_modules" / "socket.io-client").is_dir(), \
        "run `npm ci --prefix tests/js` (tests/run.sh does)"
    return subprocess.Popen([node, str(CLIENT), url, swarm, str(count), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("transport", ["", "polling"])
def test_official_js_client_receives_batches_and_resumes_after_a_drop(
        cluster: Cluster, transport: str) -> None:
    swarm = f"js-{transport or 'default'}"
    feed = Feed([cluster.nodes[0].url, cluster.nodes[2].url], swarm, batches=40)
    before = subscribes_ok(cluster.nodes[1].url)
    client = run_js(cluster.nodes[1].url, swarm, 80, transport or "", "--drop-after", "16")
    try:
        wait_for(lambda: subscribes_ok(cluster.nodes[1].url) > before, 15,
                 message="the JS client subscribed")
        feed.start()
        out, err = client.communicate(timeout=60)
    finally:
        client.kill()
        feed.stop()
    assert client.returncode == 0, err + out[-2000:]
    messages = lines(out)
    acks = [m["ack"] for m in messages if "ack" in m]
    assert len(acks) == 2 and all(a["ok"] for a in acks), acks  # first subscribe + resume
    assert acks[0]["transport"] == (transport or "websocket") or transport == ""
    summary = messages[-1]
    ids: list[str] = summary["ids"]
    assert [i for i, n in Counter(ids).items() if n > 1] == [], "duplicates after resume"
    assert len(feed.accepted) == 80 and set(ids) == set(feed.accepted), \
        "events missing across the reconnect"
    assert any(m.get("replay") for m in messages), "nothing was replayed after the drop"
