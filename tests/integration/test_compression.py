"""permessage-deflate on a real node: a room's messages are one deflate stream that every
member receives byte for byte (deflated once) and inflates with the window it keeps;
a client that asks for no context takeover gets each message compressed on its own;
WEBSOCKET_COMPRESSION=off declines the offer."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import AGENT_HEADERS, Node, RedisServer, free_port, node_env, start_node

pytestmark = pytest.mark.integration
OFFER = "permessage-deflate; client_max_window_bits"


class RawWebSocket:
    """Just enough of a websocket client to see the frames as they are on the wire."""

    def __init__(self, port: int, extensions: str | None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET /socket.io/?EIO=4&transport=websocket HTTP/1.1",
                 f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if extensions:
            lines.append(f"Sec-WebSocket-Extensions: {extensions}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        status, *headers = head.decode().split("\r\n")
        assert " 101 " in status, head
        self.headers = {k.lower(): v.strip() for k, _, v in
                        (h.partition(":") for h in headers if h)}
        self.inflater = zlib.decompressobj(-15)  # kept for the connection's life
        self.context_takeover = "server_no_context_takeover" not in self.headers.get(
            "sec-websocket-extensions", "server_no_context_takeover")

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data

    def frame(self) -> tuple[bool, bytes]:
        """(compressed, payload as sent) of the next whole message."""
        b0, b1 = self._exactly(2)
        assert b0 & 0x80, "fragmented messages are not expected"
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack(">H", self._exactly(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._exactly(8))[0]
        return bool(b0 & 0x40), self._exactly(length)

    def text(self, compressed: bool, payload: bytes) -> str:
        """The message as sent; call it once per message, in order (the inflater keeps the
        window of the messages before, as a browser does)."""
        if compressed:
            inflater = self.inflater if self.context_takeover else zlib.decompressobj(-15)
            payload = inflater.decompress(payload + b"\x00\x00\xff\xff")
        return payload.decode()

    def recv(self) -> str:
        return self.text(*self.frame())

    def send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        header = bytes([0x81, 0x80 | len(data)]) if len(data) < 126 else \
            bytes([0x81, 0x80 | 126]) + struct.pack(">H", len(data))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def subscribe(self, swarm: str) -> None:
        assert self.recv().startswith("0")  # Engine.IO open
        self.send("40")
        while not self.recv().startswith("40"):
            pass
        self.send("421" + json.dumps(["subscribe", {"swarm": swarm, "channels": ["log"]}]))
        while not self.recv().startswith("431"):
            pass

    def next_batch(self) -> tuple[bool, bytes, str]:
        """(compressed, payload as sent, text) of the next log batch."""
        while True:
            compressed, payload = self.frame()
            text = self.text(compressed, payload)
            if text.startswith('42["log_update_batch"'):
                return compressed, payload, text

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("deflate") / "redis").start()
    yield server
    server.process.stop()


def node_with(redis: RedisServer, mode: str, log_dir: Path) -> Node:
    env = node_env(redis.url, f"deflate-{mode}", free_port(), WEBSOCKET_COMPRESSION=mode,
                   BATCH_WINDOW_LOG_MS="0", MESSAGE_QUEUE_CHANNEL=f"deflate-{mode}")
    return start_node(f"deflate-{mode}", "gunicorn", env, log_dir)


def publish(node: Node, swarm: str) -> None:
    events = [{"type": "log", "swarm": swarm, "agent_id": "a",
               "data": {"level": "info", "message": f"line {i} " + "lorem ipsum " * 20}}
              for i in range(50)]
    r = requests.post(f"{node.url}/api/v1/events", json=events, headers=AGENT_HEADERS,
                      timeout=10)
    assert r.status_code == 202, r.text


def test_shared_compression_sends_the_same_bytes_to_every_client(
        redis: RedisServer, tmp_path: Path) -> None:
    node = node_with(redis, "shared", tmp_path)
    clients = [RawWebSocket(node.port, OFFER) for _ in range(3)]
    try:
        for c in clients:
            assert c.headers["sec-websocket-extensions"].startswith("permessage-deflate")
            assert c.context_takeover, "a room's messages are one stream"
            c.subscribe("deflate")
        sizes = []
        for _ in range(3):
            publish(node, "deflate")
            batches = [c.next_batch() for c in clients]
            assert all(compressed for compressed, _, _ in batches)
            assert len({payload for _, payload, _ in batches}) == 1, "deflated once, for all"
            events = json.loads(batches[0][2][2:])[1]["batch"]
            while len(events) < 50:  # the 50 events may come in more than one batch
                more = [c.next_batch() for c in clients]
                events += json.loads(more[0][2][2:])[1]["batch"]
            assert [e["data"]["message"].split(" lorem")[0] for e in events] == \
                [f"line {i}" for i in range(50)]
            sizes.append(len(batches[0][1]))
        assert sizes[-1] < sizes[0] / 2, "a batch refers back to the room's earlier ones"
        plain = RawWebSocket(node.port, None)  # a client that offers nothing gets plain text
        assert "sec-websocket-extensions" not in plain.headers
        plain.close()
    finally:
        for c in clients:
            c.close()
        node.process.stop()


def test_a_client_without_context_takeover_gets_each_message_compressed_alone(
        redis: RedisServer, tmp_path: Path) -> None:
    node = node_with(redis, "shared", tmp_path)
    streaming = RawWebSocket(node.port, OFFER)
    alone = RawWebSocket(node.port, OFFER + "; server_no_context_takeover")
    try:
        assert "server_no_context_takeover" in alone.headers["sec-websocket-extensions"]
        for c in (streaming, alone):
            c.subscribe("alone")
        publish(node, "alone")
        for c in (streaming, alone):  # each inflates what it got with its own rules
            compressed, _, text = c.next_batch()
            assert compressed and json.loads(text[2:])[1]["batch"]
    finally:
        streaming.close()
        alone.close()
        node.process.stop()


def test_compression_off_declines_the_offer(redis: RedisServer, tmp_path: Path) -> None:
    node = node_with(redis, "off", tmp_path)
    client = RawWebSocket(node.port, OFFER)
    try:
        assert "sec-websocket-extensions" not in client.headers
        client.subscribe("plain")
        publish(node, "plain")
        compressed, payload, _ = client.next_batch()
        assert not compressed and payload.startswith(b'42["log_update_batch"')
    finally:
        client.close()
        node.process.stop()
