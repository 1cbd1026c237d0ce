"""Every Socket.IO handler with generated input, in-process (Flask-SocketIO's test client).

connect with any ``auth`` payload, subscribe/unsubscribe/refresh_token with any payload and
any number of arguments, unknown event names, with and without an ack: an ack is always an
object with ``ok``; a refusal says ``error`` and ``detail``; nothing raises; and afterwards the
node still serves a well-behaved client.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_socketio import SocketIO, SocketIOTestClient
from hypothesis import given
from hypothesis import strategies as st

from swarmdash.node import node_of
from tests.fuzz.conftest import EXAMPLES, Credentials, fuzz
from tests.fuzz.strategies import (
    json_values,
    socket_event_names,
    subscribe_payloads,
    valid_subscription,
)
from tests.helpers import wait_for

HANDLED = ("subscribe", "unsubscribe")
#: The original SwarmBot dashboard's events (legacy.py): any payload, an object ack.
LEGACY = ("ping", "join_room", "leave_room")
_ACTIONS = st.sampled_from(["emit"] * 9 + ["connect"])
# (objects only: the test client cannot encode other CONNECT payloads; test_frames.py sends
# those over the wire)
_AUTH = st.one_of(st.just("token"), st.just("token"),
                  st.dictionaries(st.sampled_from(["token", "Token", "t"]), json_values,
                                  max_size=2),
                  st.sampled_from([{"token": "garbage"}, {"token": ""}, {"token": None}]))


def connect(sio: SocketIO, app: Flask, auth: Any = "token") -> SocketIOTestClient:
    payload = {"token": Credentials.viewer_token()} if auth == "token" else auth
    return sio.test_client(app, auth=payload)


def check_refusal(ack: Any, event: str) -> None:
    assert isinstance(ack, dict) and ack.get("ok") is False, (event, ack)
    assert isinstance(ack.get("error"), str) and ack["error"], ack
    assert isinstance(ack.get("detail"), str) and ack["detail"], ack


def test_handlers_ack_every_input_and_the_node_keeps_serving(socket_app: Flask) -> None:
    sio: SocketIO = socket_app.extensions["socketio"]
    node = node_of(socket_app)
    wait_for(lambda: node.relay.connected, 10, message="relay connected to redis")
    client = connect(sio, socket_app)
    assert client.is_connected()
    seen = {"ok": 0, "refused": 0, "connects": 0}

    @fuzz(EXAMPLES)
    @given(action=_ACTIONS, name=socket_event_names, payload=subscribe_payloads(),
           more=st.just([]) | st.lists(json_values, max_size=2), ack=st.booleans(), auth=_AUTH)
    def run(action: str, name: str, payload: Any, more: list[Any], ack: bool,
            auth: Any) -> None:
        if action == "connect":
            other = connect(sio, socket_app, auth)
            admitted = auth == "token"
            assert other.is_connected() == admitted, auth
            if admitted:
                assert [m["name"] for m in other.get_received()] == ["connection_established"]
                other.disconnect()
            seen["connects"] += 1
            return
        args = [payload, *more]
        if name in ("connect", "disconnect"):  # reserved: the client library refuses them
            name = f"{name}_"
        answer = client.emit(name, *args, callback=ack)
        assert client.is_connected()
        if not ack:
            assert answer is None
            return
        if name in LEGACY:
            assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool), answer
            if not answer["ok"]:
                check_refusal(answer, name)
            return
        if name not in HANDLED or more or not valid_subscription(payload):
            check_refusal(answer, name)
            if name not in HANDLED:
                assert answer["error"] == "unknown_event" and repr(name[:64]) in answer["detail"]
            else:
                assert answer["error"] == "bad_request", answer
            seen["refused"] += 1
            return
        assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool), answer
        if not answer["ok"]:  # a well-formed payload the node cannot serve: says why
            check_refusal(answer, name)
            assert answer["error"] in ("bad_request", "invalid_cursor",
                                       "too_many_subscriptions"), answer
            seen["refused"] += 1
            return
        seen["ok"] += 1
        if name == "subscribe":  # keep the client under MAX_SUBSCRIPTIONS_PER_CLIENT
            assert answer["rooms"] and isinstance(answer["cursor"], str)
            left = client.emit("unsubscribe", payload, callback=True)
            assert left == {"ok": True, "rooms": answer["rooms"]}

    run()
    assert seen["ok"] > EXAMPLES // 200 and seen["refused"] > EXAMPLES // 5, seen
    client.disconnect()

    # a well-behaved client still connects, subscribes and receives what is ingested
    good = connect(sio, socket_app)
    ack = good.emit("subscribe", {"swarm": "alpha", "channels": ["log"]}, callback=True)
    assert ack["ok"] is True, ack
    res = socket_app.test_client().post(
        "/api/v1/events", headers=Credentials.ingest_headers("all"),
        json={"type": "log", "swarm": "alpha", "agent_id": "a1",
              "data": {"level": "info", "message": "after the fuzz"}})
    assert res.status_code == 202
    [event_id] = res.get_json()["ids"]

    def delivered() -> bool:
        return any(e["id"] == event_id for m in list(good.queue)
                   if m["name"] == "log_update_batch" for e in m["args"][0]["batch"])

    wait_for(delivered, 10, message="the event reaches the subscriber")
    assert node.health()[1]
    good.disconnect()


_REFRESH = st.one_of(json_values,
                     st.dictionaries(st.sampled_from(["token", "Token"]), json_values,
                                     max_size=2),
                     st.builds(lambda t: {"token": t}, st.text(max_size=200)))


def test_refresh_token_acks_every_input_and_keeps_the_viewer(socket_app: Flask) -> None:
    """``refresh_token`` with any payload: a refusal naming why, never an exception, and
    the connection keeps its viewer and its subscription; a valid token is taken."""
    sio: SocketIO = socket_app.extensions["socketio"]
    node = node_of(socket_app)
    wait_for(lambda: node.relay.connected, 10, message="relay connected to redis")
    client = connect(sio, socket_app)
    assert client.emit("subscribe", {"swarm": "alpha"}, callback=True)["ok"]
    subscribed = dict(node.relay.clients)

    @fuzz(max(100, EXAMPLES // 10))
    @given(payload=_REFRESH, more=st.just([]) | st.lists(json_values, max_size=2))
    def run(payload: Any, more: list[Any]) -> None:
        answer = client.emit("refresh_token", payload, *more, callback=True)
        assert client.is_connected()
        check_refusal(answer, "refresh_token")
        assert answer["error"] in ("bad_request", "unauthorized"), answer
        assert node.relay.clients == subscribed

    run()
    ack = client.emit("refresh_token", {"token": Credentials.viewer_token()}, callback=True)
    assert ack["ok"] is True and ack["viewer"]["name"] == "fuzz", ack
    client.disconnect()
