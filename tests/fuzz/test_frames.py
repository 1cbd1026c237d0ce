"""Malformed Engine.IO / Socket.IO traffic against a live node, over a raw websocket and raw
long-polling requests (no client library to tidy it up).

Whatever arrives, the node answers HTTP errors without a 5xx, drops a client that breaks the
protocol, keeps serving everyone else, and does not fill its log with tracebacks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import socketio
import websocket

from tests.fuzz.conftest import LIMITS, Credentials, tracebacks
from tests.helpers import Node, wait_for

pytestmark = pytest.mark.integration
MAX_PAYLOAD = int(LIMITS["MAX_PAYLOAD_BYTES"])  # also Socket.IO's max_http_buffer_size

#: Socket.IO packets (text frames after the Engine.IO "4" message type) that break the rules.
BAD_PACKETS = [
    "4", "49", "4x", "4garbage", "7", "4-", "45", "451-", "45999999999999-[]",
    '42["subscribe"', '42{"swarm":"alpha"}', "42[]", "42[1]", '42[null,{}]', "42[[],{}]",
    '42"subscribe"', "42true", "421", "4299999999999999999999999999999", '42/nope,["subscribe",{}]',
    '42/,["x"]', "40/nope,", '40/nope,{"token":1}', "41/nope,", "43", "431[]", "4399[]",
    "44", '44{"message":"x"}', '451-["subscribe",{"_placeholder":true,"num":0}]',
    '42["subscribe",{"_placeholder":true,"num":0}]', "42" + "[" * 50_000,
    "42" + '{"a":' * 20_000, '42["\\ud800",{}]', '42["subscribe",' + "9" * 5000 + "]",
    "42[" + '"x",' * 10_000 + '"x"]',
]
#: Engine.IO packets (the whole frame) that break the rules.
BAD_ENGINE = ["", "9", "0", "0{}", "1x", "2probe", "3", "5", "6x", "x", "\x00", "b", "bAAAA",
              "b!!!not base64"]


def open_socket(node: Node, auth: Any = None) -> websocket.WebSocket:
    """A websocket that completed the Engine.IO open and the Socket.IO connect of ``/``."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{node.port}/socket.io/?EIO=4&transport=websocket", timeout=15)
    opened = ws.recv()
    assert isinstance(opened, str) and opened.startswith("0{"), opened
    token = {"token": Credentials.viewer_token()} if auth is None else auth
    ws.send("40" + json.dumps(token))
    frames = [ws.recv() for _ in range(2)]  # the connect ack and connection_established
    assert any(isinstance(f, str) and f.startswith("40{") for f in frames), frames
    return ws


def closed_or_alive(ws: websocket.WebSocket) -> str:
    """'closed' if the node dropped the socket, 'alive' once an ack round-trips, 'silent'
    if neither within 5 s (a half-sent binary event waits for its attachment)."""
    ws.settimeout(5)
    try:
        ws.send('42999["subscribe",{"swarm":"alpha"}]')  # an ack request: proves it is read
        while True:
            frame = ws.recv()
            if not frame:
                return "closed"
            if isinstance(frame, str) and frame.startswith("43999"):
                return "alive"
            if frame == "2":
                ws.send("3")
    except websocket.WebSocketTimeoutException:
        return "silent"
    except (websocket.WebSocketException, OSError):
        return "closed"


def assert_serves(node: Node) -> None:
    """The node is healthy and a normal client connects, subscribes and gets new events."""
    assert node.process.alive, node.process.tail()
    assert node.health().status_code == 200
    received: list[Any] = []
    client = socketio.Client(reconnection=False)
    client.on("log_update_batch", lambda data: received.extend(data["batch"]))
    client.connect(node.url, auth={"token": Credentials.viewer_token()}, wait_timeout=15)
    try:
        ack = client.call("subscribe", {"swarm": "alpha", "channels": ["log"]}, timeout=15)
        assert ack["ok"] is True, ack
        res = requests.post(f"{node.url}/api/v1/events", headers=Credentials.ingest_headers("all"),
                            json={"type": "log", "swarm": "alpha", "agent_id": "a1",
                                  "data": {"level": "info", "message": "still here"}}, timeout=15)
        assert res.status_code == 202, res.text
        [event_id] = res.json()["ids"]
        wait_for(lambda: any(e["id"] == event_id for e in list(received)), 15,
                 message="the new event reaches a normal client")
    finally:
        client.disconnect()


@pytest.fixture
def node(live_node: Node) -> Iterator[Node]:
    """The live node; afterwards it must still serve, with no traceback logged meanwhile."""
    before = tracebacks(live_node)
    yield live_node
    assert_serves(live_node)
    assert tracebacks(live_node) == before, live_node.process.tail(60)


@pytest.fixture
def engine_node(live_node: Node) -> Iterator[Node]:
    """As ``node``, for a broken Engine.IO frame or polling body: python-engineio logs one
    traceback for the request that carried it (through its own handler and the root
    logger: twice), never one per packet."""
    before = tracebacks(live_node)
    yield live_node
    assert_serves(live_node)
    assert tracebacks(live_node) - before <= 2, live_node.process.tail(60)


@pytest.mark.parametrize("packet", BAD_PACKETS, ids=lambda p: repr(p[:30]))
def test_bad_socketio_packet(node: Node, packet: str) -> None:
    ws = open_socket(node)
    ws.send(packet)
    state = closed_or_alive(ws)  # either is fine: what matters is what the node does next
    assert state in ("closed", "alive", "silent")
    ws.close()


@pytest.mark.parametrize("frame", BAD_ENGINE, ids=repr)
def test_bad_engineio_frame(engine_node: Node, frame: str) -> None:
    node = engine_node
    ws = open_socket(node)
    ws.send(frame)
    closed_or_alive(ws)
    ws.close()


@pytest.mark.parametrize("payload", [b"\x00\x01\x02", b"\xff" * 100, b"4" + b"\x00" * 10])
def test_binary_frames(engine_node: Node, payload: bytes) -> None:
    ws = open_socket(engine_node)
    ws.send_binary(payload)
    closed_or_alive(ws)
    ws.close()


def test_a_frame_over_the_size_limit(node: Node) -> None:
    ws = open_socket(node)
    ws.send('42["subscribe",{"swarm":"' + "a" * (MAX_PAYLOAD + 10) + '"}]')
    assert closed_or_alive(ws) == "closed"  # over max_http_buffer_size: dropped
    ws.close()


@pytest.mark.parametrize("auth", ["1", '"token"', "[]", "null", '{"token": 5}',
                                  '{"token": "nope"}', "{", '{"token": ["a"]}'])
def test_connect_with_a_bad_auth_payload_is_refused(node: Node, auth: str) -> None:
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{node.port}/socket.io/?EIO=4&transport=websocket", timeout=15)
    assert ws.recv().startswith("0{")
    ws.send("40" + auth)
    try:
        answer = ws.recv()
    except (websocket.WebSocketException, OSError):
        answer = ""  # a malformed packet: the node may just close
    if answer.startswith("44"):  # CONNECT_ERROR with a message
        assert "message" in json.loads(answer[2:])
    else:  # a packet that is not even JSON: the client is dropped
        assert answer in ("", "1"), answer
    ws.close()


def test_thousands_of_packets_on_one_socket(node: Node) -> None:
    ws = open_socket(node)
    for i in range(3000):
        ws.send(f'42["no_such_event",{i}]')
    for i in range(500):
        ws.send(f'42{i}["no_such_event"]')  # each one acked
    acks = 0
    while acks < 500:
        frame = ws.recv()
        if frame == "2":
            ws.send("3")
        elif isinstance(frame, str) and frame.startswith("43"):
            acks += 1
    ws.close()
    ws = open_socket(node)
    for _ in range(2000):
        ws.send('42["subscribe"')  # malformed: the node drops the client at the first one
    closed_or_alive(ws)
    ws.close()


def _poll(node: Node, method: str, query: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, f"{node.url}/socket.io/?{query}", data=body,
                            headers=headers or {}, timeout=15)


def _polling_session(node: Node) -> str:
    res = _poll(node, "GET", "EIO=4&transport=polling")
    assert res.status_code == 200 and res.text.startswith("0{"), res.text
    sid = str(json.loads(res.text[1:])["sid"])
    res = _poll(node, "POST", f"EIO=4&transport=polling&sid={sid}",
                ("40" + json.dumps({"token": Credentials.viewer_token()})).encode())
    assert res.status_code == 200, res.text
    return sid


@pytest.mark.parametrize("query", [
    "EIO=4&transport=polling&sid=nope", "EIO=3&transport=polling", "EIO=5&transport=polling",
    "transport=polling", "EIO=4&transport=bogus", "EIO=x&transport=polling",
    "EIO=4&transport=polling&sid=" + "a" * 2000, "EIO=4&transport=websocket"])
def test_bad_polling_requests_are_refused_without_a_5xx(node: Node, query: str) -> None:
    for method in ("GET", "POST"):
        res = _poll(node, method, query, b"40")
        assert 400 <= res.status_code < 500, (method, query, res.status_code, res.text[:200])


@pytest.mark.parametrize("body", [
    b"", b"\x1e", b"\x1e\x1e", b"4garbage", b'42["subscribe"', b'42{"a":1}', b"9",
    b"bAAAA", b"b!!!", b"\xff\xfe", b"42" + b"[" * 50_000, b'42["x"]\x1e' * 2000,
    b"x" * (MAX_PAYLOAD + 10)], ids=lambda b: repr(b[:20]))
def test_bad_polling_bodies(engine_node: Node, body: bytes) -> None:
    node = engine_node
    sid = _polling_session(node)
    try:
        res = requests.post(f"{node.url}/socket.io/?EIO=4&transport=polling&sid={sid}",
                            data=body, headers={"Content-Type": "text/plain;charset=UTF-8"},
                            timeout=5)
    except requests.RequestException:
        # python-engineio closes the session of an unknown packet type or an oversized body
        # inside this POST and holds it until the ping timeout; the node serves on
        assert body == b"9" or len(body) > MAX_PAYLOAD
        return
    assert res.status_code < 500, (res.status_code, res.text[:200])
    after = _poll(node, "GET", f"EIO=4&transport=polling&sid={sid}")
    assert after.status_code < 500
