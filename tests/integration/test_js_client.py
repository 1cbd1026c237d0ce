"""The official socket.io-client (JavaScript, under Node.js) against real nodes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import ROOT, viewer_token, wait_for

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
                            env={**os.environ, "SWARMDASH_TOKEN": viewer_token(),
                                 **(env or {})})


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def run_js_with_a_drop(url: str, swarm: str, feed: Feed, subscribed: Callable[[], Any],
                       count: int, drop_after: int, transport: str = "",
                       env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """client.mjs against ``url``: once ``subscribed()`` says it is, ``feed`` publishes; the
    client drops its connection after ``drop_after`` events and resumes with its cursor.
    Checks what every such run must show (two acks, every accepted event exactly once) and
    returns the client's messages for the caller's own checks."""
    client = run_js(url, swarm, count, transport, "--drop-after", str(drop_after), env=env)
    try:
        wait_for(subscribed, 15, message="the JS client subscribed")
        feed.start()
        out, err = client.communicate(timeout=60)
    finally:
        client.kill()
        if feed.ident is not None:  # started
            feed.stop()
    assert client.returncode == 0, err + out[-2000:]
    messages = lines(out)
    acks = [m["ack"] for m in messages if "ack" in m]
    assert len(acks) == 2 and all(a["ok"] for a in acks), acks  # first subscribe + resume
    ids: list[str] = messages[-1]["ids"]
    assert [i for i, n in Counter(ids).items() if n > 1] == [], "duplicates after resume"
    assert len(feed.accepted) == count and set(ids) == set(feed.accepted), \
        "events missing across the reconnect"
    return messages


@pytest.mark.parametrize("transport", ["", "polling"])
def test_official_js_client_receives_batches_and_resumes_after_a_drop(
        cluster: Cluster, transport: str) -> None:
    swarm = f"js-{transport or 'default'}"
    feed = Feed([cluster.nodes[0].url, cluster.nodes[2].url], swarm, batches=40)
    before = subscribes_ok(cluster.nodes[1].url)
    messages = run_js_with_a_drop(cluster.nodes[1].url, swarm, feed,
                                  lambda: subscribes_ok(cluster.nodes[1].url) > before,
                                  80, 16, transport)
    acks = [m["ack"] for m in messages if "ack" in m]
    assert acks[0]["transport"] == (transport or "websocket")
    assert any(m.get("replay") for m in messages), "nothing was replayed after the drop"
