"""The original SwarmBot dashboard's client (legacy.py), in-process: a client that never
subscribes gets the default subscription; ping, join_room and leave_room are answered as
that dashboard's server did; finished tasks arrive as task_completed / task_failed."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_socketio import SocketIO, SocketIOTestClient

from swarmdash import metrics
from swarmdash.auth import issue_token
from swarmdash.legacy import iso, task_outcome
from swarmdash.node import Node, node_of
from tests.helpers import AGENT_HEADERS, AGENT_KEY_ENTRY

from .conftest import FAST
from .test_sockets import Inbox, post, subscribe

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
#: Short enough for a quick test, long enough that a subscribe sent at connect comes first.
GRACE_MS = "300"

Connect = Callable[..., tuple[SocketIOTestClient, Inbox]]


def token(swarms: list[str] | None) -> str:
    return issue_token(FAST["SECRET_KEY"], swarms=swarms, ttl=600)


@pytest.fixture
def legacy_app(make_app: Callable[..., Flask]) -> Callable[..., Flask]:
    def build(**env: str) -> Flask:
        return make_app(**{"DEFAULT_SUBSCRIPTION_AFTER_MS": GRACE_MS,
                           "API_KEYS": AGENT_KEY_ENTRY, **env})
    return build


def post_as(http: FlaskClient, events: list[dict[str, Any]]) -> list[str]:
    """Ingest with the test API key (needed when a test turns auth on)."""
    res = http.post("/api/v1/events", json=events, headers=AGENT_HEADERS)
    assert res.status_code == 202, res.get_json()
    ids: list[str] = res.get_json()["ids"]
    return ids


@pytest.fixture
def opened() -> Iterator[list[SocketIOTestClient]]:
    clients: list[SocketIOTestClient] = []
    yield clients
    for client in clients:
        if client.is_connected():
            client.disconnect()


def connector(app: Flask, opened: list[SocketIOTestClient],
              wait_for: Callable[..., Any]) -> Connect:
    node = node_of(app)
    wait_for(lambda: node.relay.connected, message="relay connected to the event log")
    socketio: SocketIO = app.extensions["socketio"]

    def make(swarms: list[str] | None = None) -> tuple[SocketIOTestClient, Inbox]:
        client = socketio.test_client(app, auth={"token": token(swarms)})
        assert client.is_connected()
        opened.append(client)
        return client, Inbox(client)

    return make


def sid_of(inbox: Inbox) -> str:
    [hello] = inbox.payloads("connection_established")
    sid: str = hello["sid"]
    return sid


def scopes(node: Node, sid: str) -> set[str]:
    """The swarms ('*': all) of the relay subscriptions ``sid`` holds on ``node``."""
    return {swarm for swarm, _ in node.relay.clients.get(sid, {})}


def delivered_swarms(inbox: Inbox) -> Counter[str]:
    """How many times each (swarm, event id) arrived."""
    got: Counter[str] = Counter()
    for payload in inbox.payloads("agent_update_batch", "task_update_batch",
                                  "metric_update_batch", "log_update_batch"):
        for event in payload["batch"]:
            got[f"{event['swarm']}/{event['id']}"] += 1
    return got


# --- the default subscription -------------------------------------------------------------

def test_a_client_that_never_subscribes_gets_every_swarm_its_token_allows(
        legacy_app: Callable[..., Flask], opened: list[SocketIOTestClient],
        wait_for: Callable[..., Any], ev: Any) -> None:
    app = legacy_app(AUTH_DISABLED="false")
    node, http = node_of(app), app.test_client()
    connect = connector(app, opened, wait_for)
    _, everything = connect(None)
    _, scoped = connect(["alpha", "gamma"])
    wait_for(lambda: scopes(node, sid_of(everything)) == {"*"}, message="default subscription")
    wait_for(lambda: scopes(node, sid_of(scoped)) == {"alpha", "gamma"},
             message="default subscription of a scoped token")
    ids = post_as(http, [ev.agent("a1", swarm="alpha"), ev.log(swarm="beta"),
                                    ev.task("t1", "running", swarm="gamma"),
                                    ev.metric(swarm="alpha")])
    wait_for(lambda: len(delivered_swarms(everything)) == 4, message="all four events")
    assert set(delivered_swarms(everything).values()) == {1}
    wait_for(lambda: len(delivered_swarms(scoped)) == 3, message="alpha and gamma events")
    got = delivered_swarms(scoped)
    assert set(got.values()) == {1}
    assert {k.split("/")[0] for k in got} == {"alpha", "gamma"}, "beta must not reach it"
    assert {k.split("/")[1] for k in delivered_swarms(everything)} == set(ids)


def test_explicit_subscribe_within_the_grace_time_means_no_default_subscription(
        legacy_app: Callable[..., Flask], opened: list[SocketIOTestClient],
        wait_for: Callable[..., Any], ev: Any) -> None:
    app = legacy_app()
    node, http = node_of(app), app.test_client()
    connect = connector(app, opened, wait_for)
    modern, inbox = connect()
    assert subscribe(modern, swarm="alpha")["ok"]
    _, witness = connect()  # connected later: once it has its default, the grace has passed
    wait_for(lambda: scopes(node, sid_of(witness)) == {"*"}, message="witness default")
    assert scopes(node, sid_of(inbox)) == {"alpha"}
    post(http, [ev.agent("a1"), ev.log(), ev.agent("b1", swarm="beta")])
    wait_for(lambda: len(delivered_swarms(witness)) == 3, message="witness got everything")
    wait_for(lambda: len(delivered_swarms(inbox)) == 2, message="alpha events")
    assert set(delivered_swarms(inbox).values()) == {1}, "an event arrived twice"


def test_a_late_subscribe_ends_the_default_subscription(
        legacy_app: Callable[..., Flask], opened: list[SocketIOTestClient],
        wait_for: Callable[..., Any], ev: Any) -> None:
    app = legacy_app()
    node, http = node_of(app), app.test_client()
    client, inbox = connect_and_wait_default(app, opened, wait_for)
    assert subscribe(client, swarm="alpha")["ok"]
    assert scopes(node, sid_of(inbox)) == {"alpha"}
    inbox.clear()
    post(http, [ev.agent("a1"), ev.agent("b1", swarm="beta")])
    wait_for(lambda: len(delivered_swarms(inbox)) == 1, message="the alpha event")
    assert [k.split("/")[0] for k in delivered_swarms(inbox)] == ["alpha"]


def connect_and_wait_default(app: Flask, opened: list[SocketIOTestClient],
                             wait_for: Callable[..., Any],
                             swarms: list[str] | None = None
                             ) -> tuple[SocketIOTestClient, Inbox]:
    client, inbox = connector(app, opened, wait_for)(swarms)
    node = node_of(app)
    wait_for(lambda: scopes(node, sid_of(inbox)), message="the default subscription")
    return client, inbox


def test_default_subscription_none_turns_it_off(
        legacy_app: Callable[..., Flask], opened: list[SocketIOTestClient],
        wait_for: Callable[..., Any], ev: Any) -> None:
    app = legacy_app(DEFAULT_SUBSCRIPTION="none", DEFAULT_SUBSCRIPTION_AFTER_MS="10")
    node, http = node_of(app), app.test_client()
    connect = connector(app, opened, wait_for)
    started = time.monotonic()
    _, silent = connect()
    watcher, inbox = connect()
    assert subscribe(watcher, swarm="*")["ok"]
    post(http, [ev.agent("a1"), ev.log()])
    # 50 grace times later, and once the events were delivered to a subscriber:
    wait_for(lambda: time.monotonic() - started > 0.5 and len(delivered_swarms(inbox)) == 2,
             message="the subscriber's events")
    assert scopes(node, sid_of(silent)) == set()
    assert delivered_swarms(silent) == Counter()
    # join_room still works: it is the client's own request
    client = opened[0]  # the silent one
    ack = client.emit("join_room", {"room": "dashboard"}, callback=True)
    assert ack == {"ok": True, "room": "dashboard"}
    assert scopes(node, sid_of(silent)) == {"*"}


def test_the_default_subscription_is_counted(
        legacy_app: Callable[..., Flask], opened: list[SocketIOTestClient],
        wait_for: Callable[..., Any]) -> None:
    app = legacy_app()
    before = metrics.DEFAULT_SUBSCRIPTIONS.labels(outcome="ok")._value.get()
    connect_and_wait_default(app, opened, wait_for)
    wait_for(lambda: metrics.DEFAULT_SUBSCRIPTIONS.labels(outcome="ok")._value.get()
             == before + 1, message="the counter")


# --- ping, join_room, leave_room ----------------------------------------------------------

def test_ping_is_answered_with_its_ping_id(
        legacy_app: Callable[..., Flask], opened: list[SocketIOTestClient],
        wait_for: Callable[..., Any]) -> None:
    client, inbox = connector(legacy_app(), opened, wait_for)()
    client.emit("ping", {"ping_id": "quality_1795755078537"})
    [pong] = wait_for(lambda: inbox.payloads("pong"), message="pong")
    assert pong["ping_id"] == "quality_1795755078537"
    assert ISO.match(pong["timestamp"]), pong
    for bad in ({"ping_id": "x" * 129}, {"ping_id": [1]}, "ping", 7):
        ack = client.emit("ping", bad, callback=True)
        assert ack["ok"] is False and ack["error"] == "bad_request", (bad, ack)
    assert len(inbox.payloads("pong")) == 1, "a bad ping must not be answered"


def test_join_room_is_limited_to_the_tokens_swarms(
        legacy_app: Callable[..., Flask], opened: list[SocketIOTestClient],
        wait_for: Callable[..., Any], ev: Any) -> None:
    app = legacy_app(AUTH_DISABLED="false", DEFAULT_SUBSCRIPTION="none")
    node = node_of(app)
    client, inbox = connector(app, opened, wait_for)(["alpha"])
    sid = sid_of(inbox)
    for room in ("beta", "*"):
        ack = client.emit("join_room", {"room": room}, callback=True)
        assert ack["ok"] is False, ack
    assert client.emit("join_room", {"room": "beta"}, callback=True)["error"] == "forbidden"
    assert client.emit("join_room", {"room": "*"}, callback=True)["error"] == "bad_request"
    assert inbox.payloads("room_joined") == []
    assert scopes(node, sid) == set()
    assert client.emit("join_room", {"room": "alpha"}, callback=True)["ok"] is True
    [joined] = inbox.payloads("room_joined")
    assert joined["room"] == "alpha" and joined["client_id"] == sid
    assert ISO.match(joined["timestamp"])
    assert scopes(node, sid) == {"alpha"}
    # dashboard: every swarm of the token, which is alpha alone; nothing twice
    assert client.emit("join_room", {"room": "dashboard"}, callback=True)["ok"] is True
    assert scopes(node, sid) == {"alpha"}
    assert client.emit("leave_room", {"room": "alpha"}, callback=True)["ok"] is True
    assert inbox.payloads("room_left")[0]["room"] == "alpha"
    assert scopes(node, sid) == {"alpha"}, "still in dashboard"
    assert client.emit("leave_room", {"room": "dashboard"}, callback=True)["ok"] is True
    assert scopes(node, sid) == set()


def test_moving_from_dashboard_to_one_swarm_loses_nothing_and_repeats_nothing(
        legacy_app: Callable[..., Flask], opened: list[SocketIOTestClient],
        wait_for: Callable[..., Any], ev: Any) -> None:
    # windows long enough that the events still wait in the dashboard's batch at the switch
    app = legacy_app(BATCH_WINDOW_AGENT_MS="60000", BATCH_WINDOW_LOG_MS="60000")
    node, http = node_of(app), app.test_client()
    client, inbox = connect_and_wait_default(app, opened, wait_for)
    sid = sid_of(inbox)
    lead = post(http, [ev.agent("a0"), ev.log()])  # leading edge: sent at once
    wait_for(lambda: len(delivered_swarms(inbox)) == 2, message="the leading batches")
    held = post(http, [ev.agent("a1"), ev.agent("b1", swarm="beta"), ev.log()])
    wait_for(lambda: node.relay.position is not None
             and f"{node.relay.position[0]}-{node.relay.position[1]}" == held[-1],
             message="the relay read them")
    assert client.emit("join_room", {"room": "alpha"}, callback=True)["ok"] is True
    assert scopes(node, sid) == {"*"}, "alpha is inside dashboard: no second subscription"
    assert client.emit("leave_room", {"room": "dashboard"}, callback=True)["ok"] is True
    assert scopes(node, sid) == {"alpha"}
    after = post(http, [ev.agent("a2"), ev.agent("b2", swarm="beta")])
    wait_for(lambda: any(k.endswith(after[0]) for k in delivered_swarms(inbox)),
             message="the alpha event after the switch")
    got = delivered_swarms(inbox)
    assert set(got.values()) == {1}, got
    assert {k.split("/")[1] for k in got} == {*lead, *held, after[0]}


def test_bad_room_payloads_get_a_bad_request_ack(
        legacy_app: Callable[..., Flask], opened: list[SocketIOTestClient],
        wait_for: Callable[..., Any]) -> None:
    client, inbox = connector(legacy_app(), opened, wait_for)()
    for event in ("join_room", "leave_room"):
        for bad in (None, "alpha", {"room": ""}, {"room": 5}, {"room": "a b"}):
            ack = client.emit(event, bad, callback=True)
            assert ack["ok"] is False and ack["error"] == "bad_request", (event, bad, ack)
    assert inbox.payloads("room_joined", "room_left") == []


# --- events mapped exactly ----------------------------------------------------------------

def test_finished_tasks_arrive_as_task_completed_and_task_failed(
        legacy_app: Callable[..., Flask], opened: list[SocketIOTestClient],
        wait_for: Callable[..., Any], ev: Any) -> None:
    app = legacy_app(AUTH_DISABLED="false")
    http = app.test_client()
    _, everything = connect_and_wait_default(app, opened, wait_for)
    _, beta_only = connect_and_wait_default(app, opened, wait_for, ["beta"])
    modern, explicit = connector(app, opened, wait_for)()
    assert subscribe(modern, swarm="*")["ok"]
    ids = post_as(http, [
        ev.task("t1", "running"),
        ev.task("t1", "completed", result={"rows": 3}, duration_ms=1200, ts=1795755078.5),
        ev.task("t2", "failed", agent_id="a2", error="timeout", ts=1795755079.25),
        ev.task("t3", "completed", swarm="beta")])
    wait_for(lambda: len(everything.payloads("task_completed", "task_failed")) == 3,
             message="three finished tasks")
    [done, _] = everything.payloads("task_completed")
    assert done == {"task_id": "t1", "agent_id": "a1", "result": {"rows": 3},
                    "duration_ms": 1200, "timestamp": "2026-11-27T04:51:18.500Z",
                    "swarm": "alpha", "id": ids[1]}
    [failed] = everything.payloads("task_failed")
    assert failed == {"task_id": "t2", "agent_id": "a2", "error": "timeout",
                      "traceback": None, "timestamp": "2026-11-27T04:51:19.250Z",
                      "swarm": "alpha", "id": ids[2]}
    wait_for(lambda: beta_only.payloads("task_completed"), message="beta's task")
    assert [p["task_id"] for p in beta_only.payloads("task_completed", "task_failed")] == ["t3"]
    wait_for(lambda: len(delivered_swarms(explicit)) == 4, message="the subscriber's batches")
    assert explicit.payloads("task_completed", "task_failed") == [], \
        "a client that subscribed itself gets our protocol only"


def test_task_outcome_maps_only_finished_tasks(ev: Any) -> None:
    running = {**ev.task("t1", "running"), "id": "1-0"}
    assert task_outcome(running) is None
    assert task_outcome({**ev.agent("a1", "offline"), "id": "1-1"}) is None
    name, payload = task_outcome({**ev.task("t1", "failed", ts=0.001), "id": "1-2"}) or ("", {})
    assert name == "task_failed"
    assert payload["error"] is None and payload["timestamp"] == "1970-01-01T00:00:00.001Z"
    assert iso(1795755078.5) == "2026-11-27T04:51:18.500Z"


def test_a_token_with_more_swarms_than_subscriptions_allowed_gets_none(
        legacy_app: Callable[..., Flask], opened: list[SocketIOTestClient],
        wait_for: Callable[..., Any]) -> None:
    app = legacy_app(AUTH_DISABLED="false", MAX_SUBSCRIPTIONS_PER_CLIENT="2")
    counter = metrics.DEFAULT_SUBSCRIPTIONS.labels(outcome="too_many_subscriptions")
    before = counter._value.get()
    _, inbox = connector(app, opened, wait_for)(["alpha", "beta", "gamma"])
    wait_for(lambda: counter._value.get() == before + 1, message="the refusal counted")
    assert scopes(node_of(app), sid_of(inbox)) == set(), "all or nothing"


def test_a_time_no_calendar_date_holds_stays_a_number() -> None:
    """Ingest accepts any 64-bit ts; a task event far in the future must not make the
    relay's listener fail (found by the fuzz suite)."""
    assert iso(3.2e11) == 3.2e11
