"""Ingest rate limit (one token bucket per API key, shared by every node) and the per-node
client limit, against real nodes under gunicorn and a real redis-server."""

from __future__ import annotations

import hashlib

import pytest
import requests
import socketio

from tests.helpers import (
    AGENT_HEADERS,
    AGENT_KEY_ENTRY,
    Node,
    NodeGroup,
    metric_value,
    viewer_token,
    wait_for,
)

pytestmark = pytest.mark.integration
RATE = 20  # events/s per key
BURST = 40
MAX_CLIENTS = 3
OTHER_KEY = "sdk_other_" + "k" * 30
OTHER_ENTRY = f"other:{hashlib.sha256(OTHER_KEY.encode()).hexdigest()}:*"


@pytest.fixture(scope="module")
def nodes(node_factory: NodeGroup) -> list[Node]:
    return [node_factory.start(name, auth=True, API_KEYS=f"{AGENT_KEY_ENTRY},{OTHER_ENTRY}",
                               INGEST_RATE_LIMIT=str(RATE), INGEST_BURST=str(BURST),
                               MAX_EVENTS_PER_REQUEST=str(BURST),
                               MAX_CLIENTS_PER_NODE=str(MAX_CLIENTS))
            for name in ("lim1", "lim2")]


def batch(swarm: str, n: int, tag: str) -> list[dict[str, object]]:
    return [{"type": "log", "swarm": swarm, "agent_id": "a",
             "data": {"level": "info", "message": f"{tag}-{i}"}} for i in range(n)]


def post(node: Node, events: list[dict[str, object]],
         headers: dict[str, str] = AGENT_HEADERS) -> requests.Response:
    return requests.post(f"{node.url}/api/v1/events", json=events, headers=headers, timeout=10)


def stored_messages(node: Node, swarm: str) -> list[str]:
    token = viewer_token([swarm])
    r = requests.get(f"{node.url}/api/v1/events", params={"swarm": swarm}, timeout=10,
                     headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return [e["data"]["message"] for e in r.json()["events"]]


def test_the_bucket_of_a_key_is_shared_by_every_node(nodes: list[Node]) -> None:
    first, second = nodes
    assert post(first, batch("rl", BURST - 5, "a")).status_code == 202
    refused = post(second, batch("rl", 30, "b"))  # the same key, another node: 5 left
    assert refused.status_code == 429, refused.text
    body = refused.json()
    assert "rate limit" in body["error"] and "nothing was accepted" in body["error"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert 0 < body["retry_after"] <= 30 / RATE
    assert not any(m.startswith("b-") for m in stored_messages(first, "rl")), \
        "a refused batch must not be stored, not even in part"
    assert metric_value(second.url,
                        'swarmdash_ingest_rejected_total{reason="rate_limited"}') >= 1
    # Another key has its own bucket.
    other = post(second, batch("rl", 30, "c"), {"Authorization": f"Bearer {OTHER_KEY}"})
    assert other.status_code == 202, other.text
    # The bucket refills at INGEST_RATE_LIMIT: the same batch is accepted once it has.
    wait_for(lambda: post(second, batch("rl", 30, "b")).status_code == 202, 10,
             interval=0.25, message="the refilled bucket accepts the batch")
    messages = stored_messages(first, "rl")
    assert [m for m in messages if m.startswith("b-")] == [f"b-{i}" for i in range(30)]


def connect(node: Node, errors: list[object] | None = None) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.on("connect_error", lambda data: (errors if errors is not None else []).append(data))
    client.connect(node.url, transports=["websocket"], auth={"token": viewer_token()},
                   wait_timeout=10)
    return client


def test_a_full_node_refuses_a_connect_cleanly(nodes: list[Node]) -> None:
    node = nodes[0]
    clients = [connect(node) for _ in range(MAX_CLIENTS)]
    try:
        full = 'swarmdash_connects_refused_total{reason="node_full"}'
        before = metric_value(node.url, full)
        errors: list[object] = []
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(node, errors)
        assert errors and isinstance(errors[0], dict), errors
        assert errors[0]["message"].startswith("node_full"), errors  # type: ignore[index]
        assert errors[0]["data"]["error"] == "node_full", errors  # type: ignore[index]
        assert "MAX_CLIENTS_PER_NODE=3" in errors[0]["data"]["detail"], errors  # type: ignore[index]
        assert metric_value(node.url, full) == before + 1
        assert node.health().status_code == 200, "the HTTP side still answers"
        assert all(c.connected for c in clients)
        clients.pop().disconnect()
        wait_for(lambda: node.health().json()["websocket_clients"] == MAX_CLIENTS - 1, 10,
                 message="a place freed")
        clients.append(connect(node))  # and a newcomer gets it
    finally:
        for c in clients:
            c.disconnect()
