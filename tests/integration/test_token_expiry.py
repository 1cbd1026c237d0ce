"""Viewer tokens on live sockets, against real nodes (gunicorn, gevent, eventlet) on a real
redis-server with the python-socketio client: at expiry the node says so and disconnects;
``refresh_token`` keeps a connection and its subscriptions past the first token."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
import requests

from swarmdash.watch import Watcher
from tests.helpers import AGENT_HEADERS, DashClient, viewer_token, wait_for
from tests.integration.conftest import ENGINES, Cluster

pytestmark = pytest.mark.integration


def publish(cluster: Cluster, swarm: str, message: str) -> str:
    r = requests.post(f"{cluster.nodes[0].url}/api/v1/events", headers=AGENT_HEADERS,
                      timeout=10, json=[{"type": "log", "swarm": swarm, "agent_id": "a1",
                                         "data": {"level": "info", "message": message}}])
    assert r.status_code == 202, r.text
    ids: list[str] = r.json()["ids"]
    return ids[0]


def expiry_of(client: DashClient) -> float:
    [(_, hello)] = client.events("connection_established")
    expires: float = hello["viewer"]["expires"]
    return expires


@pytest.mark.parametrize("index", range(len(ENGINES)), ids=ENGINES)
def test_a_socket_ends_when_its_token_expires(cluster: Cluster, clients: list[DashClient],
                                              index: int) -> None:
    client = DashClient(cluster.nodes[index].url, token=viewer_token(["exp"], ttl=2))
    clients.append(client.connect())
    assert client.subscribe(swarm="exp", channels=["log"])["ok"]
    wait_for(lambda: not client.sio.connected, 15,
             message="the node disconnects the client at its token's expiry")
    [(_, notice)] = client.events("session_expired")
    assert notice["error"] == "unauthorized" and notice["reason"] == "expired", notice
    assert time.time() >= expiry_of(client), "not before the token expired"
    publish(cluster, "exp", "after expiry")
    assert not client.delivered(), "nothing streams on an expired token"


@pytest.mark.parametrize("index", range(len(ENGINES)), ids=ENGINES)
def test_refresh_token_keeps_the_connection_streaming(cluster: Cluster,
                                                      clients: list[DashClient],
                                                      index: int) -> None:
    client = DashClient(cluster.nodes[index].url, token=viewer_token(["ref"], ttl=2))
    clients.append(client.connect())
    assert client.subscribe(swarm="ref", channels=["log"])["ok"]
    first_expiry = expiry_of(client)
    ack: dict[str, Any] = client.sio.call("refresh_token",
                                          {"token": viewer_token(["ref"], ttl=600)},
                                          timeout=10)
    assert ack["ok"] is True and ack["viewer"]["expires"] > first_expiry + 500, ack
    wait_for(lambda: time.time() > first_expiry + 2, 10, message="the first token to expire")
    event_id = publish(cluster, "ref", "after the first token")
    wait_for(lambda: event_id in client.delivered_ids(), 15,
             message="events still stream on the refreshed token")
    assert client.sio.connected and not client.events("session_expired")
    refused: dict[str, Any] = client.sio.call("refresh_token", {"token": "forged"}, timeout=10)
    assert refused["ok"] is False and refused["error"] == "unauthorized", refused
    assert client.sio.connected, "a refused refresh leaves the connection as it was"


def test_swarmdash_watch_stops_and_says_so_when_its_token_expires(cluster: Cluster) -> None:
    out = io.StringIO()
    watcher = Watcher(cluster.nodes[0].url, {"swarm": "exp-watch", "channels": ["log"]}, out,
                      token=viewer_token(["exp-watch"], ttl=2))
    started = time.monotonic()
    watcher.run(duration=30)
    assert time.monotonic() - started < 20, "it stopped at the expiry, not at the duration"
    assert "the viewer token has expired" in out.getvalue(), out.getvalue()
