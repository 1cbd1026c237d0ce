"""Socket.IO handlers and the relay in-process (Flask-SocketIO test client, threading mode).

The relay runs in background threads: tests wait for conditions with ``wait_for``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_socketio import SocketIO, SocketIOTestClient

from swarmdash.batching import CLOCK_SLACK_S
from swarmdash.cursor import Cursor, parse_id
from swarmdash.eventlog.redis import RedisEventLog
from swarmdash.node import Node, node_of
from swarmdash.redisconn import connect as redis_connect
from swarmdash.relay import Relay
from swarmdash.subscription import AHEAD, BadRequest, from_payload

BATCHES = ("agent_update_batch", "task_update_batch", "metric_update_batch",
           "log_update_batch")


class Inbox:
    """What one test client received, read without racing the relay thread.

    (``SocketIOTestClient.get_received`` replaces its queue list, which can drop a packet
    the relay appends at that moment; this only reads the append-only list.)
    """

    def __init__(self, client: SocketIOTestClient):
        self.client = client
        self.start = 0

    def all(self) -> list[dict[str, Any]]:
        return list(self.client.queue[self.start:])

    def named(self, *names: str) -> list[dict[str, Any]]:
        return [m for m in self.all() if m["name"] in names]

    def payloads(self, *names: str) -> list[dict[str, Any]]:
        return [m["args"][0] for m in self.named(*names)]

    def event_ids(self) -> list[str]:
        """Ids of every event delivered (batches and immediate events), in arrival order."""
        out: list[str] = []
        for m in self.all():
            payload = m["args"][0] if m["args"] else {}
            if m["name"] in BATCHES:
                out.extend(e["id"] for e in payload["batch"])
            elif m["name"] in ("system_alert", "agent_critical_update"):
                out.append(payload["id"])
        return out

    def clear(self) -> None:
        self.start = len(self.client.queue)


@pytest.fixture
def sio(app: Flask) -> SocketIO:
    socketio: SocketIO = app.extensions["socketio"]
    return socketio


@pytest.fixture
def http(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def connect(app: Flask, sio: SocketIO, node: Node,
            wait_for: Callable[..., Any]) -> Callable[[], tuple[SocketIOTestClient, Inbox]]:
    wait_for(lambda: node.relay.connected, message="relay connected to the event log")
    clients: list[SocketIOTestClient] = []

    def make() -> tuple[SocketIOTestClient, Inbox]:
        client = sio.test_client(app)
        assert client.is_connected()
        clients.append(client)
        return client, Inbox(client)

    yield make  # type: ignore[misc]
    for client in clients:
        if client.is_connected():
            client.disconnect()


def post(http: FlaskClient, events: list[dict[str, Any]]) -> list[str]:
    res = http.post("/api/v1/events", json=events)
    assert res.status_code == 202, res.get_json()
    ids: list[str] = res.get_json()["ids"]
    return ids


def subscribe(client: SocketIOTestClient, **payload: Any) -> dict[str, Any]:
    ack = client.emit("subscribe", {"swarm": "alpha", **payload}, callback=True)
    assert isinstance(ack, dict), f"no ack: {ack!r}"
    return ack


def test_connection_established(connect: Callable[..., Any], node: Node, http: FlaskClient,
                                wait_for: Callable[..., Any]) -> None:
    client, inbox = connect()
    [hello] = inbox.payloads("connection_established")
    assert hello["node"] == "unit-node"
    assert hello["sid"] and hello["server_time"] > 0
    assert http.get("/health").get_json()["websocket_clients"] == 1
    client.disconnect()
    assert http.get("/health").get_json()["websocket_clients"] == 0


def test_subscribe_ack_has_snapshot_and_cursor(connect: Callable[..., Any], http: FlaskClient,
                                               ev: Any) -> None:
    ids = post(http, [ev.agent("a1", "idle"), ev.agent("a1", "busy"),
                      ev.task("t1", "running"), ev.agent("z", swarm="beta")])
    client, _ = connect()
    ack = subscribe(client, channels=["agent", "task"])
    assert ack["ok"] is True
    assert ack["cursor"] == ids[-1]
    assert ack["rooms"] == ["sub|alpha||agent,task"]
    assert ack["gap"] is False and ack["replayed"] == 0
    snap = ack["snapshot"]
    assert snap["cursor"] == ids[-1]
    assert [(e["agent_id"], e["data"]["status"]) for e in snap["agents"]] == [("a1", "busy")]
    assert [e["data"]["task_id"] for e in snap["tasks"]] == ["t1"]


@pytest.mark.parametrize("payload", [
    None, [], {"swarm": "alpha", "channels": ["logs"]}, {"swarm": "alpha", "since": "garbage"},
    {"swarm": "alpha", "room": "x"}])
def test_bad_subscribe_payloads(connect: Callable[..., Any], payload: Any) -> None:
    """Every refusal of the parser (test_subscription.py) is a bad_request ack saying it."""
    client, _ = connect()
    ack = client.emit("subscribe", payload, callback=True)
    with pytest.raises(BadRequest) as refused:
        from_payload(payload)
    assert ack == {"ok": False, "error": "bad_request", "detail": str(refused.value)}


def test_cursor_ahead_of_the_stream_is_refused(connect: Callable[..., Any]) -> None:
    client, _ = connect()
    ack = subscribe(client, since="99999999999999-0")
    assert ack == {"ok": False, "error": "invalid_cursor", "detail": AHEAD}


def test_events_posted_after_subscribing_arrive_as_batches(
        connect: Callable[..., Any], http: FlaskClient, ev: Any,
        wait_for: Callable[..., Any]) -> None:
    client, inbox = connect()
    subscribe(client)
    ids = post(http, [ev.agent("a1"), ev.task("t1", "running"), ev.metric(), ev.log("hi"),
                      ev.log("other swarm", swarm="beta")])
    wanted = ids[:4]
    wait_for(lambda: sorted(inbox.event_ids()) == sorted(wanted),
             message=f"events {wanted} delivered, got {inbox.event_ids()}")
    names = {m["name"] for m in inbox.named(*BATCHES)}
    assert names == set(BATCHES)
    [logs] = inbox.payloads("log_update_batch")
    assert logs["swarm"] == "alpha" and logs["type"] == "log" and logs["count"] == 1
    assert logs["batch"][0]["data"]["message"] == "hi"
    assert logs["batch"][0]["id"] == ids[3]
    Cursor.decode(logs["cursor"])


def test_alerts_and_critical_updates_reach_every_subscriber(
        connect: Callable[..., Any], http: FlaskClient, ev: Any,
        wait_for: Callable[..., Any]) -> None:
    client, inbox = connect()
    subscribe(client, channels=["log"])
    ids = post(http, [ev.agent("a1", "busy"), ev.alert("smoke"), ev.agent("a1", "offline")])
    wait_for(lambda: inbox.event_ids() == ids[1:], message="alert and critical delivered")
    [alert] = inbox.payloads("system_alert")
    assert alert["id"] == ids[1] and alert["data"]["message"] == "smoke"
    [critical] = inbox.payloads("agent_critical_update")
    assert critical["id"] == ids[2] and critical["data"]["status"] == "offline"


def test_agent_filter(connect: Callable[..., Any], http: FlaskClient, ev: Any,
                      wait_for: Callable[..., Any]) -> None:
    client, inbox = connect()
    ack = subscribe(client, agent_id="a2", channels=["agent"])
    assert ack["ok"] and ack["rooms"] == ["sub|alpha|a2|agent"]
    ids = post(http, [ev.agent("a1"), ev.agent("a2"), ev.agent("a3")])
    wait_for(lambda: inbox.event_ids() == [ids[1]], message="only a2 delivered")
    assert inbox.payloads("agent_update_batch")[0]["agent_id"] == "a2"


def test_resume_with_since_replays_exactly_the_missed_events(
        connect: Callable[..., Any], http: FlaskClient, node: Node, ev: Any,
        wait_for: Callable[..., Any]) -> None:
    first, inbox = connect()
    subscribe(first, channels=["agent", "log"])
    live = post(http, [ev.agent("a1"), ev.log("one"), ev.metric()])
    wait_for(lambda: sorted(inbox.event_ids()) == sorted(live[:2]), message="live delivered")
    cursor = inbox.payloads(*BATCHES)[-1]["cursor"]
    first.disconnect()

    missed = post(http, [ev.log("two"), ev.agent("a2"), ev.task("t9", "running"),
                         ev.log("three", swarm="beta"), ev.alert("!")])
    # once the relay has passed them, missed events can only come back by replay
    wait_for(lambda: node.relay.position == parse_id(missed[-1]), message="relay caught up")
    second, inbox2 = connect()
    inbox2.clear()
    ack = subscribe(second, channels=["agent", "log"], since=cursor)
    assert ack["ok"] is True, ack
    assert ack["gap"] is False and "snapshot" not in ack
    assert ack["replayed"] == 3
    expected = [missed[0], missed[1], missed[4]]
    assert sorted(inbox2.event_ids()) == sorted(expected)  # no duplicate, nothing skipped
    replays = [m["args"][0] for m in inbox2.all() if m["name"] != "connection_established"]
    assert all(p.get("replay") is True for p in replays)
    assert ack["cursor"] == missed[-1]

    # live delivery continues after the replay, without repeating it
    more = post(http, [ev.log("four")])
    wait_for(lambda: sorted(inbox2.event_ids()) == sorted(expected + more),
             message="live after replay")


def test_resume_racing_the_relay_delivers_each_event_once(
        connect: Callable[..., Any], http: FlaskClient, ev: Any,
        wait_for: Callable[..., Any]) -> None:
    """Subscribing while the relay is still behind: replay + live, no hole, no duplicate."""
    start = post(http, [ev.log("start")])[-1]
    for i in range(20):
        missed = post(http, [ev.log(f"r{i}"), ev.agent(f"a{i}"), ev.log(f"s{i}")])
        client, inbox = connect()
        inbox.clear()
        ack = subscribe(client, channels=["agent", "log"], since=start)
        assert ack["ok"] is True, ack
        more = post(http, [ev.agent(f"b{i}")])
        expected = sorted(missed + more)

        def delivered(inbox: Inbox = inbox, expected: list[str] = expected) -> bool:
            return sorted(inbox.event_ids()) == expected

        wait_for(delivered, message=f"round {i}: replayed + live events, each once")
        client.disconnect()
        start = more[-1]


def test_resume_from_a_composite_cursor(connect: Callable[..., Any], http: FlaskClient,
                                        node: Node, ev: Any,
                                        wait_for: Callable[..., Any]) -> None:
    ids = post(http, [ev.log("1"), ev.agent("a1"), ev.log("2"), ev.agent("a2")])
    since = Cursor.from_positions(parse_id(ids[1]), {"log": parse_id(ids[0])}).encode()
    wait_for(lambda: node.relay.position == parse_id(ids[-1]), message="relay caught up")
    client, inbox = connect()
    inbox.clear()
    ack = subscribe(client, channels=["agent", "log"], since=since)
    assert ack["ok"] and ack["replayed"] == 2
    assert sorted(inbox.event_ids()) == sorted([ids[2], ids[3]])


def test_resume_from_a_trimmed_cursor_gives_a_snapshot(
        make_app: Callable[..., Flask], ev: Any, wait_for: Callable[..., Any]) -> None:
    app = make_app(STREAM_MAXLEN="100")
    node = node_of(app)
    wait_for(lambda: node.relay.connected, message="relay connected")
    ids = post(app.test_client(), [ev.agent(f"a{i}") for i in range(150)])
    client = app.extensions["socketio"].test_client(app)
    ack = subscribe(client, channels=["agent"], since=ids[0])
    assert ack["ok"] is True and ack["gap"] is True
    assert len(ack["snapshot"]["agents"]) == 150
    assert ack["cursor"] == ids[-1]
    client.disconnect()


def test_unsubscribe_stops_delivery(connect: Callable[..., Any], http: FlaskClient, ev: Any,
                                    wait_for: Callable[..., Any]) -> None:
    leaving, inbox = connect()
    staying, witness = connect()
    subscribe(leaving, channels=["log"])
    subscribe(staying, channels=["log", "agent"])  # another room: delivery order is known
    first = post(http, [ev.log("before")])
    wait_for(lambda: inbox.event_ids() == first, message="delivered before unsubscribing")
    ack = leaving.emit("unsubscribe", {"swarm": "alpha"}, callback=True)
    assert ack == {"ok": True, "rooms": ["sub|alpha||log"]}
    after = post(http, [ev.log("after")])
    wait_for(lambda: after[0] in witness.event_ids(), message="witness got the later event")
    assert inbox.event_ids() == first
    # unsubscribing again is harmless
    assert leaving.emit("unsubscribe", {"swarm": "alpha"}, callback=True) == {
        "ok": True, "rooms": []}


def test_resubscribing_replaces_the_subscription(connect: Callable[..., Any],
                                                 http: FlaskClient, node: Node, ev: Any,
                                                 wait_for: Callable[..., Any]) -> None:
    client, inbox = connect()
    subscribe(client, channels=["log"])
    ack = subscribe(client, channels=["metric"])
    assert ack["rooms"] == ["sub|alpha||metric"]
    assert list(node.relay.rooms) == ["sub|alpha||metric"]
    ids = post(http, [ev.log(), ev.metric()])
    wait_for(lambda: inbox.event_ids() == [ids[1]], message="only metrics delivered")


def test_disconnect_leaves_rooms(connect: Callable[..., Any], node: Node) -> None:
    client, _ = connect()
    subscribe(client, channels=["log"])
    assert node.relay.subscribers() == {"alpha": 1}
    client.disconnect()
    assert node.relay.rooms == {}
    assert node.relay.subscribers() == {}


def test_too_many_subscriptions(make_app: Callable[..., Flask],
                                wait_for: Callable[..., Any]) -> None:
    app = make_app(MAX_SUBSCRIPTIONS_PER_CLIENT="2")
    wait_for(lambda: node_of(app).relay.connected, message="relay connected")
    client = app.extensions["socketio"].test_client(app)
    assert subscribe(client, agent_id="a1")["ok"]
    assert client.emit("subscribe", {"swarm": "beta"}, callback=True)["ok"]
    ack = client.emit("subscribe", {"swarm": "gamma"}, callback=True)
    assert ack["ok"] is False and ack["error"] == "too_many_subscriptions"
    client.disconnect()


def test_a_full_room_refuses_one_more_member(make_app: Callable[..., Flask],
                                            wait_for: Callable[..., Any]) -> None:
    app = make_app(MAX_ROOM_SIZE="2")
    wait_for(lambda: node_of(app).relay.connected, message="relay connected")
    socketio = app.extensions["socketio"]
    members = [socketio.test_client(app) for _ in range(3)]
    assert subscribe(members[0])["ok"] and subscribe(members[1])["ok"]
    ack = subscribe(members[2])
    assert ack == {"ok": False, "error": "room_full", "detail": "room holds 2 clients"}
    assert subscribe(members[2], agent_id="a1")["ok"], "another room still has space"
    members[0].disconnect()
    assert subscribe(members[2])["ok"], "a place freed in the room"
    for client in members[1:]:
        client.disconnect()


def test_a_resume_beyond_replay_limit_gets_a_snapshot_instead(
        make_app: Callable[..., Flask], ev: Any, wait_for: Callable[..., Any]) -> None:
    app = make_app(REPLAY_LIMIT="5")
    node = node_of(app)
    wait_for(lambda: node.relay.connected, message="relay connected")
    http = app.test_client()
    client = app.extensions["socketio"].test_client(app)
    cursor = subscribe(client, channels=["agent"])["cursor"]
    client.disconnect()
    ids = post(http, [ev.agent(f"a{i}", status="busy") for i in range(8)])
    wait_for(lambda: node.relay.position is not None
             and "{}-{}".format(*node.relay.position) == ids[-1], message="relay caught up")
    back = app.extensions["socketio"].test_client(app)
    ack = subscribe(back, channels=["agent"], since=cursor)
    assert ack["ok"] and ack["gap"] is True, ack
    assert sorted(a["agent_id"] for a in ack["snapshot"]["agents"]) == [f"a{i}" for i in range(8)]
    back.disconnect()


def test_windows_and_coalescing_through_the_relay(make_app: Callable[..., Flask], ev: Any,
                                                  wait_for: Callable[..., Any]) -> None:
    app = make_app(BATCH_WINDOW_AGENT_MS="50")
    wait_for(lambda: node_of(app).relay.connected, message="relay connected")
    client = app.extensions["socketio"].test_client(app)
    inbox = Inbox(client)
    subscribe(client, channels=["agent"])
    ids = post(app.test_client(), [ev.agent("a1", status=s)
                                   for s in ("idle", "busy", "waiting", "processing", "busy")])
    wait_for(lambda: len(inbox.payloads("agent_update_batch")) == 2, message="two batches")
    first, second = inbox.payloads("agent_update_batch")
    assert [e["id"] for e in first["batch"]] == ids[:1]  # leading edge
    assert [e["id"] for e in second["batch"]] == ids[-1:]  # the latest state only
    assert second["coalesced"] == 3
    assert second["cursor"] == ids[-1]
    client.disconnect()


def one_subscriber(make_app: Callable[..., Flask], wait_for: Callable[..., Any], channel: str,
                   **env: str) -> tuple[Flask, Relay, SocketIOTestClient, Inbox]:
    """A node with ``env`` and one client subscribed to alpha's ``channel``."""
    app = make_app(**env)
    relay = node_of(app).relay
    wait_for(lambda: relay.connected, message="relay connected")
    client = app.extensions["socketio"].test_client(app)
    inbox = Inbox(client)
    subscribe(client, channels=[channel])
    return app, relay, client, inbox


def test_the_flush_timer_wakes_for_waiting_windows_only(make_app: Callable[..., Flask], ev: Any,
                                                       wait_for: Callable[..., Any]) -> None:
    app, relay, client, inbox = one_subscriber(make_app, wait_for, "agent",
                                               BATCH_WINDOW_AGENT_MS="300", FLUSH_TICK_MS="20")
    assert relay.flush_at is None  # nothing waits: the flush loop has no deadline
    ids = post(app.test_client(), [ev.agent("a1"), ev.agent("a2")])  # one read
    wait_for(lambda: relay.flush_at is not None, message="a deadline for a2's window")
    planned = relay.flush_at
    [room] = relay.rooms.values()
    ends = room.next_due()
    assert ends is not None and ends - CLOCK_SLACK_S <= planned < ends + 0.02  # its tick
    assert round(planned / 0.02) * 0.02 == pytest.approx(planned, abs=1e-6)  # on the grid
    wait_for(lambda: len(inbox.payloads("agent_update_batch")) == 2, message="a2's batch")
    assert [e["id"] for e in inbox.payloads("agent_update_batch")[1]["batch"]] == ids[1:]
    wait_for(lambda: relay.flush_at is None, message="no deadline once nothing waits")
    client.disconnect()


def test_a_room_that_fails_to_flush_is_retried_once_a_tick(
        make_app: Callable[..., Flask], ev: Any, wait_for: Callable[..., Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, relay, client, inbox = one_subscriber(make_app, wait_for, "log",
                                               BATCH_WINDOW_LOG_MS="20", FLUSH_TICK_MS="20")
    post(app.test_client(), [ev.log("1")])  # the leading edge: sent at once
    wait_for(lambda: inbox.payloads("log_update_batch"), message="the leading edge")
    attempts: list[float] = []
    [room] = relay.rooms.values()
    monkeypatch.setattr(room, "flush", lambda *_a: attempts.append(time.monotonic()) or 1 / 0)
    post(app.test_client(), [ev.log("2")])  # waits for its window; every flush of it fails
    wait_for(lambda: len(attempts) >= 6, message="the failing flush retried")
    # the first try may be the read's own; the timer's retries are paced by FLUSH_TICK_MS,
    # not a busy loop (a slow machine only spaces them more)
    assert attempts[5] - attempts[1] >= 4 * 0.02 - 0.005
    client.disconnect()


def test_subscribe_while_the_store_is_unreachable(make_app: Callable[..., Flask],
                                                  closed_url: str) -> None:
    app = make_app(event_log=RedisEventLog(redis_connect(closed_url, 0.2)))
    client = app.extensions["socketio"].test_client(app)
    assert client.is_connected()
    ack = subscribe(client)
    assert ack["ok"] is False and ack["error"] == "unavailable"
    client.disconnect()


def test_the_relay_delivers_from_a_redis_event_log(make_app: Callable[..., Flask],
                                                   fake_redis: Any, ev: Any,
                                                   wait_for: Callable[..., Any]) -> None:
    log = RedisEventLog(fake_redis, maxlen=1000)
    app = make_app(event_log=log)
    node = node_of(app)
    wait_for(lambda: node.relay.connected, message="relay connected to fakeredis")
    http = app.test_client()
    before = post(http, [ev.agent("a1")])
    client = app.extensions["socketio"].test_client(app)
    inbox = Inbox(client)
    ack = subscribe(client, channels=["agent", "log"])
    assert ack["ok"] and ack["snapshot"]["agents"][0]["id"] == before[0]
    ids = post(http, [ev.log("via redis"), ev.agent("a2")])
    wait_for(lambda: sorted(inbox.event_ids()) == sorted(ids), message="delivered via redis")
    assert http.get("/health").get_json()["redis"] == "ok"
    client.disconnect()


def test_resume_on_a_node_whose_room_is_behind_repeats_nothing(
        make_app: Callable[..., Flask], ev: Any, wait_for: Callable[..., Any]) -> None:
    """A client comes from a node that already flushed what the new node still holds."""
    import fakeredis

    from swarmdash.keys import Keys

    server = fakeredis.FakeServer()

    def shared_log() -> RedisEventLog:
        conn = fakeredis.FakeRedis(server=server, decode_responses=True, protocol=2)
        return RedisEventLog(conn, keys=Keys("unit"))

    fast = make_app(event_log=shared_log())
    slow = make_app(event_log=shared_log(), BATCH_WINDOW_LOG_MS="60000", MAX_BATCH_SIZE="2")
    for app in (fast, slow):
        wait_for(lambda app=app: node_of(app).relay.connected, message="relays connected")
    fast_sio: SocketIO = fast.extensions["socketio"]
    slow_sio: SocketIO = slow.extensions["socketio"]
    http = fast.test_client()

    viewer = slow_sio.test_client(slow)
    viewer_inbox = Inbox(viewer)
    assert subscribe(viewer, channels=["log"])["ok"]
    first = post(http, [ev.log("1")])  # a quiet window: both nodes send it at once
    wait_for(lambda: viewer_inbox.event_ids() == first, message="leading-edge flush")
    second = post(http, [ev.log("2")])  # the slow node holds this one for its window

    mover = fast_sio.test_client(fast)
    mover_inbox = Inbox(mover)
    assert subscribe(mover, channels=["log"], since=first[-1])["ok"]
    wait_for(lambda: mover_inbox.event_ids() == second, message="second event on the fast node")
    cursor = mover_inbox.payloads("log_update_batch")[-1]["cursor"]
    mover.disconnect()
    assert viewer_inbox.event_ids() == first, "the slow node should still hold the event"

    resumed = slow_sio.test_client(slow)
    resumed_inbox = Inbox(resumed)
    resumed_inbox.clear()
    ack = subscribe(resumed, channels=["log"], since=cursor)
    assert ack["ok"] and ack["replayed"] == 0
    wait_for(lambda: viewer_inbox.event_ids() == first + second,
             message="the slow room flushed for the newcomer")
    third = post(http, [ev.log("3"), ev.log("4")])  # a full batch of 2 is sent at once
    wait_for(lambda: len(resumed_inbox.event_ids()) >= 2, message="live events after resume")
    assert resumed_inbox.event_ids() == third, "an event was delivered twice after resume"
    assert viewer_inbox.event_ids() == first + second + third
    for client in (viewer, resumed):
        client.disconnect()


def test_a_client_gone_during_subscribe_leaves_no_member_behind(
        connect: Callable[..., Any], node: Node, http: FlaskClient, ev: Any,
        wait_for: Callable[..., Any]) -> None:
    """The disconnect lands while the replay is being read: the room must not keep it."""
    ids = post(http, [ev.log(str(i)) for i in range(5)])
    client, _ = connect()
    wait_for(lambda: node.relay.position == parse_id(ids[-1]), message="relay caught up")
    relay = node.relay
    read = relay.log.read

    def read_then_disconnect(after: Any, count: int, block_ms: int | None = None) -> Any:
        if block_ms is None:  # the replay read of subscribe (the relay's own reads block)
            relay.log.read = read  # type: ignore[method-assign]
            client.disconnect()
        return read(after, count, block_ms)

    relay.log.read = read_then_disconnect  # type: ignore[method-assign]
    try:
        client.emit("subscribe", {"swarm": "alpha", "since": "0-0"}, callback=True)
    finally:
        relay.log.read = read  # type: ignore[method-assign]
    assert not client.is_connected()
    assert relay.clients == {} and relay.rooms == {}
