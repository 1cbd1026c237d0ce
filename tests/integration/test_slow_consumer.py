"""A client that stops reading is dropped at MAX_QUEUE_SIZE / MAX_QUEUE_BYTES; the others
never notice."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import requests
import websocket

from tests.helpers import DashClient, Node, NodeGroup, metric_value, wait_for

pytestmark = pytest.mark.integration
MAX_QUEUE = 300
MAX_QUEUE_BYTES = 20_000_000  # above the 15 MB replay below, below 12 replays of 2 MB
STUCK_CLIENTS = 50
#: What 50 stuck clients may add to the node's memory while ~15 MB per client streams by:
#: what waits for them is shared frames (MAX_QUEUE_SIZE=300 of them at most, ~2 MB), plus
#: socket buffers.
#: Without the limit every client would hold the whole stream (50 x 15 MB = 750 MB).
RSS_GROWTH_BOUND_MB = 80


@pytest.fixture(scope="module")
def node(node_factory: NodeGroup) -> Node:
    return node_factory.start("slow1", MAX_QUEUE_SIZE=str(MAX_QUEUE),
                              MAX_QUEUE_BYTES=str(MAX_QUEUE_BYTES), BATCH_WINDOW_LOG_MS="0")


def stuck_client(url: str, swarm: str) -> tuple[websocket.WebSocket, str]:
    """A raw Socket.IO client that subscribes, then never reads again (tiny receive buffer);
    with the cursor of its subscribe ack."""
    ws = websocket.create_connection(
        url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket", timeout=10,
        sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    assert ws.recv().startswith("0")  # Engine.IO open
    ws.send("40")
    while not ws.recv().startswith("40"):  # Socket.IO connect
        pass
    ws.send("421" + json.dumps(["subscribe", {"swarm": swarm, "channels": ["log"]}]))
    while not (frame := ws.recv()).startswith("431"):  # the ack
        pass
    ack = json.loads(frame[3:])[0]
    assert ack["ok"], ack
    return ws, ack["cursor"]


def worker_rss_mb(node: Node) -> float:
    """Resident memory of the node's gunicorn worker (the master's only child), MB."""
    master = node.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, f"expected one worker under gunicorn {master}: {children}"
    for line in Path(f"/proc/{children[0]}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def drops(url: str) -> float:
    return metric_value(url, "swarmdash_slow_consumer_drops_total")


def test_a_client_that_stops_reading_is_dropped_and_nobody_else_notices(node: Node) -> None:
    healthy = DashClient(node.url, transports=["websocket"]).connect()
    stuck, _ = stuck_client(node.url, "flood")
    try:
        assert healthy.subscribe(swarm="calm", channels=["log"])["ok"]
        before = drops(node.url)
        body = "x" * 7000
        calm: list[str] = []
        for start in range(0, 1500, 100):  # ~10 MB that the stuck client never reads
            flood = [{"type": "log", "swarm": "flood", "agent_id": "a",
                      "data": {"level": "info", "message": body, "seq": start + i}}
                     for i in range(100)]
            assert requests.post(f"{node.url}/api/v1/events", json=flood,
                                 timeout=10).status_code == 202
            r = requests.post(f"{node.url}/api/v1/events", timeout=10, json={
                "type": "log", "swarm": "calm", "agent_id": "b",
                "data": {"level": "info", "message": f"still here {start}"}})
            calm += r.json()["ids"]
        wait_for(lambda: drops(node.url) >= before + 1, 15, message="the stuck client dropped")
        wait_for(lambda: healthy.delivered_ids() == calm, 15,
                 message="the other client received its events")
        assert healthy.sio.connected and node.health().status_code == 200
        wait_for(lambda: node.health().json()["websocket_clients"] == 1, 15,
                 message="the stuck client gone from the node")
        assert drops(node.url) == before + 1, "a healthy client was dropped too"
    finally:
        healthy.close()
        stuck.close()


def test_fifty_stuck_clients_keep_node_memory_bounded_and_resume_from_their_cursor(
        node: Node) -> None:
    """50 browsers stop reading while ~15 MB each streams by: each is dropped at
    MAX_QUEUE_SIZE, the node's memory stays bounded, and a dropped client that comes back
    with its cursor receives every event it missed, once, in order."""
    swarm = "stuck50"
    before = drops(node.url)
    stuck = [stuck_client(node.url, swarm) for _ in range(STUCK_CLIENTS)]
    cursor = stuck[0][1]
    rss_start = worker_rss_mb(node)
    peak = rss_start
    published: list[str] = []
    body = "x" * 7000
    try:
        for start in range(0, 2100, 100):  # 2,100 events of ~7 KB: ~15 MB per client
            batch = [{"type": "log", "swarm": swarm, "agent_id": "a",
                      "data": {"level": "info", "message": body, "seq": start + i}}
                     for i in range(100)]
            r = requests.post(f"{node.url}/api/v1/events", json=batch, timeout=30)
            assert r.status_code == 202, r.text
            published += r.json()["ids"]
            peak = max(peak, worker_rss_mb(node))
        wait_for(lambda: drops(node.url) >= before + STUCK_CLIENTS, 60,
                 message=f"all {STUCK_CLIENTS} stuck clients dropped")
        peak = max(peak, worker_rss_mb(node))
        print(f"\nnode RSS: {rss_start:.0f} MB at start, peak {peak:.0f} MB with "
              f"{STUCK_CLIENTS} stuck clients (bound +{RSS_GROWTH_BOUND_MB} MB)")
        assert peak - rss_start < RSS_GROWTH_BOUND_MB, (rss_start, peak)
        assert node.health().status_code == 200
    finally:
        for ws, _ in stuck:
            ws.close()
    back = DashClient(node.url, transports=["websocket"]).connect()
    try:
        t0 = time.monotonic()
        ack = back.sio.call("subscribe", {"swarm": swarm, "channels": ["log"], "since": cursor},
                            timeout=120)  # ~15 MB are replayed before the ack
        print(f"resume ack after {time.monotonic() - t0:.1f} s")
        assert ack["ok"], ack
        wait_for(lambda: len(back.delivered_ids()) >= len(published), 60,
                 message="the returning client caught up from its cursor")
        assert back.delivered_ids() == published, "missed, repeated or reordered events"
    finally:
        back.close()


def test_a_stuck_client_that_resubscribes_with_an_old_cursor_is_dropped_by_bytes(
        node: Node) -> None:
    """Each resubscribe with an old cursor replays ~2 MB in a few large packets; a client
    that reads none of it must be dropped at MAX_QUEUE_BYTES, not after MAX_QUEUE_SIZE
    packets (which 12 replays never reach)."""
    swarm = "replayer"
    body = "x" * 7000
    for start in range(0, 300, 100):  # ~2.1 MB of history
        batch = [{"type": "log", "swarm": swarm, "agent_id": "a",
                  "data": {"level": "info", "message": body, "seq": start + i}}
                 for i in range(100)]
        assert requests.post(f"{node.url}/api/v1/events", json=batch, timeout=30) \
            .status_code == 202
    before = drops(node.url)
    ws, _ = stuck_client(node.url, "elsewhere")  # subscribed, then never reads again
    try:
        for n in range(12):  # ~25 MB of replays, in a few packets each
            ws.send(f"42{n + 10}" + json.dumps(["subscribe", {
                "swarm": swarm, "channels": ["log"], "since": "0-0"}]))
        wait_for(lambda: drops(node.url) >= before + 1, 30,
                 message="the stuck client dropped by the bytes waiting for it")
        wait_for(lambda: node.health().json()["websocket_clients"] == 0, 15,
                 message="the stuck client gone from the node")
    finally:
        ws.close()
