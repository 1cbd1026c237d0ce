"""Order on one connection while batches flow: frames written straight to the socket, acks,
replays, Engine.IO pings and a close all reach the client in the order they were sent.

A real gunicorn (gevent) node writes room frames through each websocket's outbox; these
clients must each see the numbered stream exactly once and in order:

- a websocket client subscribed before the stream starts;
- a client that starts on long-polling and upgrades to websocket while batches flow;
- a raw websocket client that stops reading mid-stream (its socket buffer fills, the node
  queues behind it), then reads again, answering pings once per second all along;
- a client that subscribes mid-stream from the beginning of the stream (replay, then the
  ack, then live batches).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest
import requests
import websocket

from tests.helpers import DashClient, Node, NodeGroup, viewer_token, wait_for

pytestmark = pytest.mark.integration
SWARM = "order"
EVENTS = 1500
PER_POST = 10


@pytest.fixture(scope="module")
def node(node_factory: NodeGroup) -> Node:
    return node_factory.start("order1", BATCH_WINDOW_LOG_MS="20", WEBSOCKET_PING_INTERVAL="1")


def seqs(events: list[dict[str, Any]]) -> list[int]:
    return [e["data"]["seq"] for e in events if e.get("swarm") == SWARM]


class RawReader:
    """A raw Socket.IO websocket client with a tiny receive buffer that can stop reading."""

    def __init__(self, url: str):
        self.ws = websocket.create_connection(
            url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
            timeout=30, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
        self.seqs: list[int] = []
        self.pings = 0
        self.reading = threading.Event()
        self.reading.set()
        self.ack: dict[str, Any] | None = None
        assert self.ws.recv().startswith("0")
        self.ws.send("40" + json.dumps({"token": viewer_token()}))
        while not self.ws.recv().startswith("40"):
            pass
        self.ws.send("421" + json.dumps(["subscribe", {"swarm": SWARM, "channels": ["log"]}]))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                self.reading.wait()
                frame = self.ws.recv()
                if frame == "2":
                    self.pings += 1
                    self.ws.send("3")
                elif frame.startswith("431"):
                    self.ack = json.loads(frame[3:])[0]
                elif frame.startswith("42"):
                    name, data = json.loads(frame[2:])
                    if name == "log_update_batch":
                        self.seqs += [e["data"]["seq"] for e in data["batch"]]
        except (websocket.WebSocketException, OSError):
            return


def publish(url: str, stop: threading.Event, published: list[int]) -> None:
    for start in range(0, EVENTS, PER_POST):
        batch = [{"type": "log", "swarm": SWARM, "agent_id": "a",
                  "data": {"level": "info", "message": "x" * 1000, "seq": start + i}}
                 for i in range(PER_POST)]
        r = requests.post(f"{url}/api/v1/events", json=batch, timeout=30)
        assert r.status_code == 202, r.text
        published += [b["data"]["seq"] for b in batch]
        time.sleep(0.005)  # pacing of the stream, not synchronisation
        if stop.is_set():
            return


def test_every_client_sees_the_stream_once_and_in_order_whatever_its_path(node: Node) -> None:
    live = DashClient(node.url, transports=["websocket"]).connect()
    upgrading = DashClient(node.url, transports=["polling", "websocket"])
    raw = RawReader(node.url)
    stop = threading.Event()
    published: list[int] = []
    late: DashClient | None = None
    try:
        assert live.subscribe(swarm=SWARM, channels=["log"])["ok"]
        wait_for(lambda: raw.ack is not None, 15, message="the raw client's subscribe ack")
        assert raw.ack and raw.ack["ok"], raw.ack
        writer = threading.Thread(target=publish, args=(node.url, stop, published))
        writer.start()
        wait_for(lambda: len(published) >= 200, 30, message="the stream under way")
        upgrading.connect()  # long-polling first; the upgrade happens while batches flow
        assert upgrading.subscribe(swarm=SWARM, channels=["log"])["ok"]
        raw.reading.clear()  # stops reading mid-stream: the node must queue behind it
        wait_for(lambda: len(published) >= 700, 30, message="more of the stream")
        late = DashClient(node.url, transports=["websocket"]).connect()
        ack = late.subscribe(swarm=SWARM, channels=["log"], since="0-0")
        assert ack["ok"] and ack["replayed"] > 0, ack
        replayed_before_ack = len(seqs(late.delivered()))
        raw.reading.set()
        writer.join(120)
        assert not writer.is_alive()
        assert upgrading.sio.transport() == "websocket"

        everything = list(range(EVENTS))
        for name, client in (("live", live), ("late", late)):
            wait_for(lambda c=client: len(seqs(c.delivered())) >= EVENTS, 30,
                     message=f"every event at the {name} client")
            assert seqs(client.delivered()) == everything, f"{name}: missed, repeated or reordered"
        # the replay (from the first event) reaches the client before its ack; live batches
        # may follow the join before the ack is written, never precede the replay
        assert replayed_before_ack >= ack["replayed"], "the replay must arrive before the ack"
        wait_for(lambda: raw.seqs[-1:] == [EVENTS - 1], 60, message="the raw client caught up")
        assert raw.seqs == everything, "the reader that stalled lost or reordered frames"
        assert raw.pings > 0, "pings reach a client whose frames were queued"
        wait_for(lambda: seqs(upgrading.delivered())[-1:] == [EVENTS - 1], 30,
                 message="the upgraded client caught up")
        got = seqs(upgrading.delivered())
        assert got == list(range(got[0], EVENTS)), "the upgrade lost or reordered frames"
        assert node.health().status_code == 200
    finally:
        stop.set()
        live.close()
        upgrading.close()
        if late is not None:
            late.close()
        raw.ws.close()
