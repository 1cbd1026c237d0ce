"""The store watch: a Redis outage every node sees keeps the node in the pool (for the
grace), one only this node sees takes it out; dashboards are told either way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fakeredis
from flask import Flask

from swarmdash.eventlog.redis import RedisEventLog
from swarmdash.keys import Keys
from swarmdash.node import node_of
from swarmdash.storewatch import StoreWatch, peer_addresses


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch(ping: list[bool], peers_reach: dict[str, bool], clock: Clock,
          told: list[dict[str, Any]], woken: list[int], grace: float = 30) -> StoreWatch:
    return StoreWatch(lambda: ping[0], lambda: list(peers_reach), grace=grace,
                      peer_timeout=0.5, ping_timeout=2, notify=told.append,
                      on_back=lambda: woken.append(1),
                      ask=lambda address, timeout: peers_reach[address], clock=clock)


def test_an_outage_no_peer_escapes_keeps_the_node_for_the_grace_then_not() -> None:
    ping, clock, told, woken = [True], Clock(), [], []  # type: ignore[var-annotated]
    w = watch(ping, {"10.0.0.2:8050": False, "10.0.0.3:8050": False}, clock, told, woken)
    w.check()
    assert w.healthy() and w.available and told == []
    ping[0] = False
    w.check()
    assert not w.available and w.healthy()
    assert told == [{"available": False, "scope": "cluster", "since": 1000.0, "for": 0.0,
                     "grace": 30}]
    clock.now += 29.9
    w.check()
    assert w.healthy() and len(told) == 1, "the same outage is told once"
    clock.now += 0.2
    assert not w.healthy(), "past REDIS_OUTAGE_GRACE the node leaves the pool"
    ping[0] = True
    w.check()
    assert w.healthy() and w.available
    assert told[-1] == {"available": True} and woken == [1]


def test_a_node_that_alone_lost_redis_is_unhealthy_at_once() -> None:
    ping, clock, told, woken = [True], Clock(), [], []  # type: ignore[var-annotated]
    w = watch(ping, {"10.0.0.2:8050": False, "10.0.0.3:8050": True}, clock, told, woken)
    w.check()
    ping[0] = False
    w.check()
    assert not w.healthy() and w.status()["scope"] == "node"


def test_a_broken_connection_while_peers_reach_redis_is_tried_again_not_an_outage() -> None:
    """After a Redis restart the first ping may fail at once on a connection the restart
    broke, while the peers already reach the new server: a second ping decides."""
    pings = iter([True, False, True])
    told: list[dict[str, Any]] = []
    w = StoreWatch(lambda: next(pings), lambda: ["10.0.0.2:8050"], grace=30, peer_timeout=0.5,
                   ping_timeout=2, notify=told.append, ask=lambda address, timeout: True)
    w.check()
    w.check()
    assert w.available and w.healthy() and told == []


def test_redis_back_for_the_peers_ends_an_outage_everyone_saw_only_if_it_is_back_here() -> None:
    """At the end of an outage of Redis a peer may reach it a moment before this node does:
    one more ping decides whether this node is now alone, whatever the first one took."""
    pings = iter([True, False, False, True, False, False, False])
    reach = {"10.0.0.2:8050": False}
    w = StoreWatch(lambda: next(pings), lambda: list(reach), grace=30, peer_timeout=0.5,
                   ping_timeout=0, ask=lambda address, timeout: reach[address])
    w.check()
    w.check()
    assert w.status()["scope"] == "cluster"
    reach["10.0.0.2:8050"] = True
    w.check()  # fails, the peer reaches Redis, the second ping succeeds
    assert w.available
    reach["10.0.0.2:8050"] = False
    w.check()
    assert w.status()["scope"] == "cluster"
    reach["10.0.0.2:8050"] = True
    w.check()  # fails twice: alone now
    assert w.status()["scope"] == "node" and not w.healthy()


def test_a_node_that_never_reached_redis_is_unhealthy() -> None:
    w = watch([False], {}, Clock(), [], [])
    w.check()
    assert not w.healthy(), "no sessions to keep, no peers known: stay out of the pool"


def test_peer_addresses_are_the_other_live_nodes() -> None:
    records = [{"node": "a", "address": "10.0.0.1:8050"}, {"node": "b", "address": "10.0.0.2:8050"},
               {"node": "c"}]
    assert peer_addresses(records, "a") == ["10.0.0.2:8050"]


def test_a_node_alone_in_an_outage_stays_healthy_and_tells_its_clients(
        make_app: Callable[..., Flask], ev: Any, wait_for: Callable[..., Any]) -> None:
    """Redis away for a node with no peer that reaches it: /health stays 200 (degraded),
    the connected dashboard is told and stays connected, and events flow again after."""
    from .test_sockets import Inbox, post, subscribe

    server = fakeredis.FakeServer()
    conn = fakeredis.FakeRedis(server=server, decode_responses=True, protocol=2)
    app = make_app(event_log=RedisEventLog(conn, keys=Keys("unit")), STORE_CHECK_INTERVAL="0.05")
    node = node_of(app)
    wait_for(lambda: node.relay.connected, message="relay connected")
    http = app.test_client()
    client = app.extensions["socketio"].test_client(app)
    inbox = Inbox(client)
    assert subscribe(client, channels=["log"])["ok"]
    server.connected = False
    wait_for(lambda: inbox.payloads("store_status"), message="store_status sent")
    assert inbox.payloads("store_status")[0]["available"] is False
    health = http.get("/health")
    assert health.status_code == 200, health.get_json()
    assert health.get_json()["status"] == "degraded"
    assert health.get_json()["outage"]["scope"] == "cluster"
    refused = http.post("/api/v1/events", json=[ev.log("while away")])
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    wait_for(lambda: not node.relay.connected, message="the relay lost Redis")
    server.connected = True
    wait_for(lambda: len(inbox.payloads("store_status")) == 2, message="store back, told")
    assert inbox.payloads("store_status")[1] == {"available": True}
    assert client.is_connected()
    ids = post(http, [ev.log("after")])
    wait_for(lambda: inbox.event_ids() == ids, message="events flow again")
    assert http.get("/health").get_json()["status"] == "ok"
    client.disconnect()


class Monotonic:
    """The store watch reads time.monotonic() to date the relay's last answer."""

    def __init__(self, monkeypatch: Any) -> None:
        self.now = 500.0
        monkeypatch.setattr("swarmdash.storewatch.time.monotonic", lambda: self.now)


def test_a_read_of_the_relay_answered_within_the_interval_stands_for_a_ping(
        monkeypatch: Any) -> None:
    """A node that reads events knows Redis answers: no ping of its own, until the relay's
    last answer is older than the interval; a failing ping then is an outage as before."""
    mono, pings, answered = Monotonic(monkeypatch), [], [0.0]
    ok = [True]

    def ping() -> bool:
        pings.append(mono.now)
        return ok[0]

    told: list[dict[str, Any]] = []
    w = StoreWatch(ping, lambda: [], grace=30, peer_timeout=0.5, ping_timeout=2,
                   notify=told.append, answered_at=lambda: answered[0],
                   answer_counts_for=0.5, clock=Clock())
    w.check()
    assert pings == [500.0], "the first round pings: Redis has not answered this node yet"
    answered[0] = mono.now = 500.4
    mono.now = 500.5
    w.check()
    assert pings == [500.0] and w.available and w.healthy()
    mono.now = 501.0  # the relay's last answer is 0.6 s old: it stands for nothing now
    ok[0] = False
    w.check()
    assert pings == [500.0, 501.0] and not w.available
    assert told and told[0]["available"] is False
    answered[0] = mono.now = 501.4  # during an outage every round pings, whatever answered
    w.check()
    assert pings[-1] == 501.4 and not w.available
    ok[0] = True
    w.check()
    assert w.available and told[-1] == {"available": True}


def test_a_relay_read_that_fails_makes_the_next_round_ping(
        make_app: Callable[..., Flask], wait_for: Callable[..., Any]) -> None:
    """Redis gone: the relay's failed read clears its answer, so the store watch pings at
    its next round and reports the outage as quickly as it did with a ping every round."""
    server = fakeredis.FakeServer()
    conn = fakeredis.FakeRedis(server=server, decode_responses=True, protocol=2)
    app = make_app(event_log=RedisEventLog(conn, keys=Keys("unit")), STORE_CHECK_INTERVAL="0.05",
                   RELAY_BLOCK_MS="20")
    node = node_of(app)
    wait_for(lambda: node.relay.answered_at > 0, message="the relay read the log")
    server.connected = False
    wait_for(lambda: node.relay.answered_at == 0.0, message="the failed read cleared it")
    wait_for(lambda: not node.store.available, message="the outage is seen")
