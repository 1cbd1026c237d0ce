"""Connections that never send the Socket.IO CONNECT, against a real gunicorn node.

The audit: ten raw websockets that completed the Engine.IO handshake but never
authenticated made ``/health`` time out on a node with ``WORKER_CONNECTIONS=10``. Now they
are counted (``MAX_PENDING_CONNECTIONS``; beyond it the handshake is refused) and closed
after ``HANDSHAKE_TIMEOUT``, so the documented promise holds: ``/health`` answers on a
full node.
"""

from __future__ import annotations

import contextlib

import pytest
import requests
import socketio
import websocket

from tests.helpers import Node, NodeGroup, metric_value, viewer_token, wait_for

pytestmark = pytest.mark.integration
WORKER_CONNECTIONS = 10
MAX_CLIENTS = 4
MAX_PENDING = 3
HANDSHAKE_TIMEOUT = 3.0
ATTACKERS = 10


@pytest.fixture(scope="module")
def node(node_factory: NodeGroup) -> Node:
    return node_factory.start("pending1", auth=True, WORKER_CONNECTIONS=str(WORKER_CONNECTIONS),
                              MAX_CLIENTS_PER_NODE=str(MAX_CLIENTS),
                              MAX_PENDING_CONNECTIONS=str(MAX_PENDING),
                              HANDSHAKE_TIMEOUT=str(HANDSHAKE_TIMEOUT))


def raw_engineio(node: Node) -> websocket.WebSocket | None:
    """A websocket that completes the Engine.IO handshake and stops there (None: refused)."""
    url = f"ws://127.0.0.1:{node.port}/socket.io/?EIO=4&transport=websocket"
    try:
        ws = websocket.create_connection(url, timeout=5)
    except websocket.WebSocketBadStatusException as exc:
        assert exc.status_code == 401, exc
        return None
    opened = ws.recv()
    assert isinstance(opened, str) and opened.startswith("0{"), opened
    return ws


def closed_by_node(ws: websocket.WebSocket) -> bool:
    """True once the node has closed ``ws`` (reads past any ping it sent)."""
    try:
        while True:
            frame = ws.recv()
            if not frame:
                return True
    except websocket.WebSocketTimeoutException:
        return False
    except (websocket.WebSocketConnectionClosedException, OSError):
        return True


def test_connections_that_never_connect_are_bounded_and_closed(node: Node) -> None:
    refused_before = metric_value(
        node.url, 'swarmdash_connects_refused_total{reason="too_many_pending"}')
    held: list[websocket.WebSocket] = []
    try:
        for _ in range(ATTACKERS):
            ws = raw_engineio(node)
            if ws is not None:
                held.append(ws)
        # the node is full of pending connections: its HTTP side still answers
        health = requests.get(f"{node.url}/health", timeout=3)
        assert health.status_code == 200, health.text
        assert len(held) == MAX_PENDING, f"{len(held)} pending connections admitted"
        assert metric_value(node.url, 'swarmdash_connects_refused_total'
                                      '{reason="too_many_pending"}') \
            == refused_before + ATTACKERS - MAX_PENDING
        for ws in held:
            ws.settimeout(0.5)
        wait_for(lambda: all(closed_by_node(ws) for ws in held), HANDSHAKE_TIMEOUT + 10,
                 interval=0.1, message="the node closes connections that never connected")
        assert metric_value(node.url, "swarmdash_handshake_timeouts_total") >= MAX_PENDING
    finally:
        for ws in held:
            with contextlib.suppress(Exception):
                ws.close()
    # the places are free again: a real client connects and is not timed out
    client = socketio.Client(reconnection=False)
    client.connect(node.url, transports=["websocket"], auth={"token": viewer_token()},
                   wait_timeout=10)
    try:
        assert client.call("subscribe", {"swarm": "alpha"}, timeout=10)["ok"] is True
        wait_for(lambda: metric_value(node.url, "swarmdash_pending_connections") == 0, 10,
                 message="the authenticated client no longer counts as pending")
        assert client.connected
    finally:
        client.disconnect()


def test_health_answers_while_the_node_is_full(node: Node) -> None:
    """Clients up to MAX_CLIENTS_PER_NODE and pending connections up to their limit: the
    worker still has connections left for /health (checked at start-up)."""
    clients = []
    held: list[websocket.WebSocket] = []
    try:
        for _ in range(MAX_CLIENTS):
            c = socketio.Client(reconnection=False)
            c.connect(node.url, transports=["websocket"], auth={"token": viewer_token()},
                      wait_timeout=10)
            clients.append(c)
        for _ in range(ATTACKERS):
            ws = raw_engineio(node)
            if ws is not None:
                held.append(ws)
        assert len(held) <= MAX_PENDING
        for _ in range(3):
            assert requests.get(f"{node.url}/health", timeout=3).status_code == 200
    finally:
        for ws in held:
            with contextlib.suppress(Exception):
                ws.close()
        for c in clients:
            c.disconnect()
