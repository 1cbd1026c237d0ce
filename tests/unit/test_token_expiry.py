"""A live socket ends when its viewer token expires, and may refresh its token first.

The audit found that expiry was checked only at ``subscribe``: a connection kept streaming
on an expired token for as long as it stayed open.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask_socketio import SocketIOTestClient

from swarmdash.auth import issue_token
from swarmdash.node import Node, node_of
from tests.unit.conftest import FAST

SECRET = FAST["SECRET_KEY"]


def token(ttl: float = 3600, swarms: list[str] | None = None) -> str:
    return issue_token(SECRET, swarms=swarms, ttl=ttl, name="viewer")


@pytest.fixture
def authed(make_app: Callable[..., Flask],
           wait_for: Callable[..., Any]) -> tuple[Flask, Node]:
    app = make_app(AUTH_DISABLED="false")
    node = node_of(app)
    wait_for(lambda: node.relay.connected, message="relay connected")
    return app, node


def connect(app: Flask, tok: str) -> SocketIOTestClient:
    client: SocketIOTestClient = app.extensions["socketio"].test_client(
        app, auth={"token": tok})
    assert client.is_connected()
    return client


def names(client: SocketIOTestClient) -> list[str]:
    return [m["name"] for m in list(client.queue)]


def test_the_connection_ends_when_the_token_expires(
        authed: tuple[Flask, Node], wait_for: Callable[..., Any]) -> None:
    app, node = authed
    client = connect(app, token(ttl=2))
    ack = client.emit("subscribe", {"swarm": "alpha"}, callback=True)
    assert ack["ok"] is True, ack
    assert node.relay.subscribers() == {"alpha": 1}
    wait_for(lambda: not client.is_connected(), timeout=10,
             message="the node ends the connection at the token's expiry")
    [notice] = [m["args"][0] for m in list(client.queue) if m["name"] == "session_expired"]
    assert notice == {"error": "unauthorized", "reason": "expired",
                      "detail": "the viewer token has expired: sign in again"}
    assert node.relay.subscribers() == {}, "no room keeps streaming to it"
    assert node.clients == set()


def test_a_refreshed_token_keeps_the_connection_and_its_subscriptions(
        authed: tuple[Flask, Node], wait_for: Callable[..., Any]) -> None:
    app, node = authed
    client = connect(app, token(ttl=2))
    assert client.emit("subscribe", {"swarm": "alpha"}, callback=True)["ok"]
    ack = client.emit("refresh_token", {"token": token(ttl=3600)}, callback=True)
    assert ack["ok"] is True, ack
    assert ack["viewer"]["expires"] > time.time() + 3000
    # past the first token's expiry (and a check of the deadlines) it is still there
    deadline = time.time() + 4
    wait_for(lambda: time.time() > deadline, timeout=10, message="the old expiry to pass")
    assert client.is_connected() and "session_expired" not in names(client)
    assert node.relay.subscribers() == {"alpha": 1}


@pytest.mark.parametrize(("payload", "error", "reason"), [
    (None, "bad_request", None),
    ({"token": 5}, "bad_request", None),
    ({"token": "not-a-token"}, "unauthorized", "invalid"),
    ({"token": issue_token("another-secret-0123456789abcdef0123", swarms=None, ttl=60)},
     "unauthorized", "invalid"),
    ({"token": "@beta"}, "forbidden", None),
])
def test_a_refresh_that_is_not_valid_changes_nothing(
        authed: tuple[Flask, Node], payload: Any, error: str, reason: str | None) -> None:
    app, node = authed
    client = connect(app, token(ttl=3600))
    assert client.emit("subscribe", {"swarm": "alpha"}, callback=True)["ok"]
    if isinstance(payload, dict) and payload.get("token") == "@beta":
        payload = {"token": token(swarms=["beta"])}  # may not see alpha, which it watches
    before = dict(node.relay.clients)
    ack = client.emit("refresh_token", payload, callback=True)
    assert ack["ok"] is False and ack["error"] == error, ack
    assert ack.get("reason") == reason and ack["detail"]
    assert client.is_connected() and node.relay.clients == before
    client.disconnect()
