"""A client that stops reading is dropped at MAX_QUEUE_SIZE; the others never notice."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket

from tests.helpers import (
    DashClient,
    Node,
    RedisServer,
    free_port,
    metric_value,
    node_env,
    start_node,
    wait_for,
)

pytestmark = pytest.mark.integration
MAX_QUEUE = 300


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    log_dir: Path = tmp_path_factory.mktemp("slow")
    redis = RedisServer(log_dir / "redis").start()
    env = node_env(redis.url, "slow1", free_port(), MAX_QUEUE_SIZE=str(MAX_QUEUE),
                   BATCH_WINDOW_LOG_MS="0", MESSAGE_QUEUE_CHANNEL=f"slow-{redis.port}")
    node = start_node("slow1", "gunicorn", env, log_dir)
    try:
        yield node
    finally:
        node.process.stop()
        redis.process.stop()


def stuck_client(url: str, swarm: str) -> websocket.WebSocket:
    """A raw Socket.IO client that subscribes, then never reads again (tiny receive buffer)."""
    ws = websocket.create_connection(
        url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket", timeout=10,
        sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    assert ws.recv().startswith("0")  # Engine.IO open
    ws.send("40")
    while not ws.recv().startswith("40"):  # Socket.IO connect
        pass
    ws.send("421" + json.dumps(["subscribe", {"swarm": swarm, "channels": ["log"]}]))
    while not ws.recv().startswith("431"):  # the ack
        pass
    return ws


def drops(url: str) -> float:
    return metric_value(url, "swarmdash_slow_consumer_drops_total")


def test_a_client_that_stops_reading_is_dropped_and_nobody_else_notices(node: Node) -> None:
    healthy = DashClient(node.url, transports=["websocket"]).connect()
    stuck = stuck_client(node.url, "flood")
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
