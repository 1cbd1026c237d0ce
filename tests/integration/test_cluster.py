"""Three real nodes + a real redis-server: fan-out, order, resume, Redis restart, notify."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from swarmdash import Publisher
from tests.helpers import (
    AGENT_HEADERS,
    AGENT_KEY,
    DashClient,
    NodeGroup,
    id_key,
    metric_value,
    viewer_token,
    wait_for,
)

from .conftest import Cluster

pytestmark = pytest.mark.integration
_seq = itertools.count(1)


def log_event(swarm: str, n: int, agent: str = "agent-1") -> dict[str, Any]:
    return {"type": "log", "swarm": swarm, "agent_id": agent,
            "data": {"level": "info", "message": f"line {n}", "seq": n}}


def agent_event(swarm: str, n: int) -> dict[str, Any]:
    return {"type": "agent", "swarm": swarm, "agent_id": f"agent-{n}",
            "data": {"status": "busy", "seq": n}}


def post(node_url: str, events: list[dict[str, Any]]) -> requests.Response:
    return requests.post(f"{node_url}/api/v1/events", json=events, timeout=5,
                         headers=AGENT_HEADERS)


class Feed(threading.Thread):
    """Posts numbered log+agent events to the nodes in turn, as a careful agent would.

    A refused or failed batch is retried, on the next node, with the same Idempotency-Key
    until it is accepted; ``accepted`` holds the ids of every accepted event.
    """

    def __init__(self, urls: list[str], swarm: str, retry_for: float = 30.0,
                 batches: int | None = None):
        super().__init__(daemon=True)
        self.urls, self.swarm, self.retry_for = urls, swarm, retry_for
        self.batches = batches  # stop after this many accepted batches (None: until stop())
        self.accepted: list[str] = []
        self.refused: Counter[int] = Counter()
        self.errors = 0
        self.duplicates = 0
        self.unsent = 0
        self.stop_flag = threading.Event()

    def run(self) -> None:
        pending: tuple[str, list[dict[str, Any]]] | None = None
        given_up_at: float | None = None
        for url in itertools.cycle(self.urls):
            stopping = self.stop_flag.wait(0.02)
            if pending is None and (stopping or len(self.accepted) >= 2 * (
                    self.batches if self.batches is not None else float("inf"))):
                return
            if pending is None:
                n = next(_seq)
                pending = (uuid.uuid4().hex, [log_event(self.swarm, n), agent_event(self.swarm, n)])
            elif stopping:
                given_up_at = given_up_at or time.monotonic() + self.retry_for
                if time.monotonic() > given_up_at:
                    self.unsent += 1
                    return
            key, batch = pending
            try:
                r = requests.post(f"{url}/api/v1/events", json=batch, timeout=5,
                                  headers={"Idempotency-Key": key, **AGENT_HEADERS})
            except requests.RequestException:
                self.errors += 1
                continue
            if r.status_code == 202:
                self.accepted.extend(r.json()["ids"])
                self.duplicates += bool(r.json().get("duplicate"))
                pending = None
            else:
                self.refused[r.status_code] += 1

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(self.retry_for + 10)
        assert not self.is_alive() and self.unsent == 0, "a batch was never accepted"


def assert_exactly_once_in_order(client: DashClient, expected: list[str], swarm: str) -> None:
    got = [e["id"] for e in client.delivered() if e["swarm"] == swarm]
    dupes = [i for i, c in Counter(got).items() if c > 1]
    assert not dupes, f"duplicates delivered: {dupes[:5]}"
    assert set(got) == set(expected), (
        f"missing {sorted(set(expected) - set(got), key=id_key)[:5]}, "
        f"unexpected {sorted(set(got) - set(expected), key=id_key)[:5]}")
    for channel in ("log", "agent"):  # stream order is kept within each channel
        ids = [e["id"] for e in client.delivered() if e["type"] == channel]
        assert ids == sorted(ids, key=id_key), f"{channel} events out of order"


def test_every_engine_freezes_its_start_up_objects(cluster: Cluster) -> None:
    """gunicorn's worker, and swarmdash serve under gevent and eventlet: what a node built
    at start-up is out of the garbage collector's full collections, which would otherwise
    walk it all while every client of the node waits (swarmdash/gcfreeze.py)."""
    for node in cluster.nodes:
        frozen = metric_value(node.url, "swarmdash_gc_frozen_objects")
        assert frozen > 10_000, f"{node.name} ({node.engine}): {frozen:.0f} objects frozen"


def test_event_from_any_node_reaches_subscribers_of_every_node_once(
        cluster: Cluster, clients: list[DashClient]) -> None:
    swarm = "fanout"
    subscribed = [cluster.client(i) for i in range(3)]
    other = cluster.client(1)
    clients.extend([*subscribed, other])
    for c in subscribed:
        ack = c.subscribe(swarm=swarm, channels=["agent", "log"])
        assert ack["ok"] and ack["snapshot"]["agents"] == []
    assert other.subscribe(swarm="someone-else", channels=["agent", "log"])["ok"]
    established = subscribed[1].events("connection_established")[0][1]
    assert established["node"] == "node2" and established["sid"]

    expected: list[str] = []
    r = post(cluster.nodes[0].url, [log_event(swarm, i) for i in range(20)])
    assert r.status_code == 202 and r.json()["accepted"] == 20
    expected += r.json()["ids"]
    assert r.json()["cursor"] == expected[-1]
    with Publisher(cluster.redis.url) as pub:
        for i in range(10):
            expected.append(pub.agent(swarm, f"pub-agent-{i}", "busy", seq=i).cursor)
        expected += pub.publish([log_event(swarm, 100 + i) for i in range(10)]).ids

    for c in subscribed:
        wait_for(lambda c=c: len(c.delivered()) >= len(expected), 15,
                 message=f"{len(expected)} events on {c.url}")
    for c in subscribed:
        assert_exactly_once_in_order(c, expected, swarm)
        logs = c.events("log_update_batch")
        assert logs and all(e["type"] == "log" for _, d in logs for e in d["batch"])
        assert all(e["type"] == "agent" for _, d in c.events("agent_update_batch")
                   for e in d["batch"])
        batch = logs[0][1]
        assert batch["count"] == len(batch["batch"]) and batch["type"] == "log"
    assert other.delivered() == [], "a client of another swarm received events"


def test_alert_is_immediate_for_every_subscriber_whatever_its_channels(
        cluster: Cluster, clients: list[DashClient]) -> None:
    swarm = "alerts"
    metric_only = [cluster.client(i) for i in range(3)]
    clients.extend(metric_only)
    for c in metric_only:
        assert c.subscribe(swarm=swarm, channels=["metric"])["ok"]
    alert = {"type": "alert", "swarm": swarm, "agent_id": "a1",
             "data": {"severity": "critical", "message": "disk full"}}
    crash = {"type": "agent", "swarm": swarm, "agent_id": "a2", "data": {"status": "error"}}
    ids = post(cluster.nodes[2].url, [alert, crash]).json()["ids"]
    for c in metric_only:
        wait_for(lambda c=c: c.events("system_alert") and c.events("agent_critical_update"),
                 5, message="immediate events")
        (_, got_alert), = c.events("system_alert")
        assert got_alert["id"] == ids[0] and got_alert["data"]["message"] == "disk full"
        assert c.events("agent_critical_update")[0][1]["id"] == ids[1]
        assert not c.events("agent_update_batch")


def test_client_resumes_on_another_node_without_gap_or_duplicate(
        cluster: Cluster, clients: list[DashClient]) -> None:
    swarm = "resume"
    first = cluster.client(0)
    clients.append(first)
    ack = first.subscribe(swarm=swarm, channels=["agent", "log"])
    start = ack["cursor"]
    feed = Feed([n.url for n in cluster.nodes], swarm)
    feed.start()
    try:
        wait_for(lambda: len(first.delivered()) >= 20, 15, message="first events")
        first.close()
        wait_for(lambda: len(feed.accepted) >= len(first.delivered()) + 30, 15,
                 message="events published while the client is away")
        second = DashClient(cluster.nodes[2].url).connect()
        clients.append(second)
        assert first.cursor is not None
        ack = second.subscribe(swarm=swarm, channels=["agent", "log"], since=first.cursor)
        assert ack["ok"] and not ack["gap"] and "snapshot" not in ack
        assert ack["replayed"] > 0
        wait_for(lambda: len(second.delivered()) >= 20, 15, message="live events after resume")
    finally:
        feed.stop()
    wait_for(lambda: set(feed.accepted) <= set(first.delivered_ids() + second.delivered_ids()),
             15, message="every accepted event delivered")
    got = first.delivered_ids() + second.delivered_ids()
    assert len(got) == len(set(got)), "an event was delivered twice across the resume"
    assert all(id_key(i) > id_key(start) for i in got)
    assert set(got) == set(feed.accepted)
    replayed = [d for _, d in second.received if isinstance(d, dict) and d.get("replay")]
    assert replayed, "missed events were not replayed as batches"


def test_redis_restart_refuses_ingest_then_recovers_without_losing_accepted_events(
        cluster: Cluster, clients: list[DashClient]) -> None:
    swarm = "restart"
    subscribers = [cluster.client(i) for i in range(3)]
    clients.extend(subscribers)
    for c in subscribers:
        assert c.subscribe(swarm=swarm, channels=["agent", "log"])["ok"]
    feed = Feed([n.url for n in cluster.nodes], swarm)
    feed.start()
    try:
        wait_for(lambda: len(feed.accepted) >= 20, 10, message="events before the restart")
        cluster.redis.stop()
        for node in cluster.nodes:  # away for every node: they stay in the pool
            wait_for(lambda node=node: node.health().json()["status"] == "degraded", 10,
                     message=f"{node.name} /health degraded without Redis")
            assert node.health().status_code == 200
        wait_for(lambda: feed.refused[503] >= 3, 10, message="ingest refused with 503")
        cluster.redis.start()
        for node in cluster.nodes:
            wait_for(lambda node=node: node.health().status_code == 200, 20,
                     message=f"{node.name} recovers")
        accepted_after = len(feed.accepted)
        wait_for(lambda: len(feed.accepted) >= accepted_after + 20, 15,
                 message="ingest accepted again after the restart")
    finally:
        feed.stop()
    assert set(feed.refused) <= {503}, f"unexpected refusals {feed.refused}"
    for c in subscribers:
        wait_for(lambda c=c: set(feed.accepted) <= set(c.delivered_ids()), 20,
                 message=f"all accepted events on {c.url}")
        assert_exactly_once_in_order(c, feed.accepted, swarm)


def notify(queue_url: str, message: str, channel: str) -> None:
    env = {**os.environ, "MESSAGE_QUEUE_CHANNEL": channel, "SWARMDASH_ENV_FILE": "/nonexistent"}
    done = subprocess.run([sys.executable, "-m", "swarmdash.cli", "notify", message,
                           "--severity", "critical", "--queue-url", queue_url],
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_notify_reaches_every_node_through_the_redis_queue(
        cluster: Cluster, clients: list[DashClient]) -> None:
    everyone = [cluster.client(i) for i in range(3)]
    clients.extend(everyone)
    notify(cluster.redis.url, "maintenance at 18:00", f"swarmdash-test-{cluster.redis.port}")
    for c in everyone:
        wait_for(lambda c=c: c.events("system_alert"), 10, message=f"notify on {c.url}")
        (_, alert), = c.events("system_alert")
        assert alert["data"] == {"severity": "critical", "message": "maintenance at 18:00"}


def test_clients_hopping_between_nodes_see_every_event_exactly_once(
        cluster: Cluster, clients: list[DashClient]) -> None:
    """Several viewers reconnect to other nodes, repeatedly, while events stream in."""
    swarm = "hops"
    viewers = 6
    sessions: list[list[DashClient]] = [[cluster.client(i % 3)] for i in range(viewers)]
    clients.extend(s[0] for s in sessions)
    channels = ["agent", "log"]
    starts = [s[0].subscribe(swarm=swarm, channels=channels)["cursor"] for s in sessions]
    feed = Feed([n.url for n in cluster.nodes], swarm)
    feed.start()
    try:
        for hop in range(1, 4):
            target = len(feed.accepted) + 24
            wait_for(lambda target=target: len(feed.accepted) >= target, 15,
                     message="events between hops")
            for v, chain in enumerate(sessions):
                old = chain[-1]
                old.close()
                new = cluster.client((v + hop) % 3)
                clients.append(new)
                ack = new.subscribe(swarm=swarm, channels=channels, since=old.cursor)
                assert ack["ok"] and not ack["gap"], ack
                chain.append(new)
    finally:
        feed.stop()
    for v, chain in enumerate(sessions):
        def all_ids(chain: list[DashClient] = chain) -> list[str]:
            return [i for c in chain for i in c.delivered_ids()]
        wait_for(lambda all_ids=all_ids: set(feed.accepted) <= set(all_ids()), 15,
                 message=f"viewer {v}: every accepted event")
        got = all_ids()
        dupes = [i for i, n in Counter(got).items() if n > 1]
        assert not dupes, f"viewer {v}: delivered twice: {dupes[:5]}"
        assert set(got) == {i for i in feed.accepted if id_key(i) > id_key(starts[v])}


def test_publish_and_simulate_commands_feed_the_cluster(
        cluster: Cluster, clients: list[DashClient]) -> None:
    viewer = cluster.client(2)
    clients.append(viewer)
    assert viewer.subscribe(swarm="cli", channels=["log"])["ok"]
    env = {**os.environ, "REDIS_URL": cluster.redis.url, "SWARMDASH_ENV_FILE": "/nonexistent",
           "PUBLISH_API_KEY": AGENT_KEY}  # simulate sends it as its Bearer key
    cli = [sys.executable, "-m", "swarmdash.cli"]
    done = subprocess.run(
        [*cli, "publish", "--type", "log", "--swarm", "cli", "--agent", "bot-1", "--data",
         '{"level": "warning", "message": "from the shell"}'],
        env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    cursor = json.loads(done.stdout)["cursor"]
    wait_for(lambda: viewer.delivered_ids() == [cursor], 10, message="published log line")
    bad = subprocess.run([*cli, "publish", "--type", "log", "--swarm", "cli", "--agent", "b",
                          "--data", '{"level": "loud"}'], env=env, capture_output=True,
                         text=True, timeout=30)
    assert bad.returncode == 2 and "data.level" in bad.stderr

    sim = subprocess.run([*cli, "simulate", "--url", cluster.nodes[0].url, "--agents", "12",
                          "--swarms", "2", "--rate", "200", "--duration", "1.5", "--seed", "7"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert sim.returncode == 0, sim.stderr
    sent = int(sim.stderr.rsplit("done:", 1)[1].split()[0])
    assert sent >= 12 + 200  # the roster, then about rate x duration events
    snapshot = requests.get(f"{cluster.nodes[1].url}/api/v1/snapshot?swarm=swarm-1",
                            timeout=5, headers={"Authorization": f"Bearer {viewer_token()}"}
                            ).json()
    assert len(snapshot["agents"]) == 6


def test_clients_of_a_killed_node_resume_on_the_others(
        cluster: Cluster, node_factory: NodeGroup, clients: list[DashClient],
        tmp_path: Path) -> None:
    """kill -9 a node mid-stream: its viewers resume elsewhere from their cursors."""
    swarm = "killed"
    doomed = node_factory.start("node4", auth=True, COALESCE_AGENT_UPDATES="false",
                                log_dir=tmp_path)
    feed = Feed([n.url for n in cluster.nodes], swarm)
    try:
        victims = [DashClient(doomed.url).connect() for _ in range(4)]
        clients.extend(victims)
        starts = [v.subscribe(swarm=swarm, channels=["agent", "log"])["cursor"] for v in victims]
        feed.start()
        wait_for(lambda: all(len(v.delivered()) >= 10 for v in victims), 15,
                 message="events on the doomed node")
        doomed.process.kill()
        wait_for(lambda: not any(v.sio.connected for v in victims), 15,
                 message="viewers notice the dead node")
        resumed = []
        for i, victim in enumerate(victims):
            survivor = cluster.client(i % 3)
            clients.append(survivor)
            ack = survivor.subscribe(swarm=swarm, channels=["agent", "log"], since=victim.cursor)
            assert ack["ok"] and not ack["gap"], ack
            resumed.append(survivor)
        target = len(feed.accepted) + 20
        wait_for(lambda: len(feed.accepted) >= target, 15, message="events after the kill")
    finally:
        feed.stop()
        doomed.process.kill()
    for victim, survivor, start in zip(victims, resumed, starts, strict=True):
        def got(victim: DashClient = victim, survivor: DashClient = survivor) -> list[str]:
            return victim.delivered_ids() + survivor.delivered_ids()
        wait_for(lambda got=got: set(feed.accepted) <= set(got()), 15,
                 message="every accepted event after resuming")
        ids = got()
        assert len(ids) == len(set(ids)), "an event was delivered twice across the kill"
        assert set(ids) == {i for i in feed.accepted if id_key(i) > id_key(start)}


def subscribes_ok(node_url: str) -> float:
    """How many subscribe requests this node has acknowledged with ok."""
    return metric_value(node_url, 'swarmdash_subscribe_total{outcome="ok"}')


def test_watch_command_tails_a_subscription(cluster: Cluster) -> None:
    node = cluster.nodes[1].url
    before = subscribes_ok(node)
    env = {**os.environ, "SWARMDASH_ENV_FILE": "/nonexistent", "VIEWER_TOKEN": viewer_token()}
    watch = subprocess.Popen(
        [sys.executable, "-m", "swarmdash.cli", "watch", "--url", node, "--swarm", "tail",
         "--channels", "log", "--count", "3", "--duration", "30"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: subscribes_ok(node) > before, 15, message="the watcher subscribed")
        ids = post(cluster.nodes[0].url, [log_event("tail", i) for i in range(3)]).json()["ids"]
        out, err = watch.communicate(timeout=30)
    finally:
        watch.kill()
    assert watch.returncode == 0, err
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    assert [line.split()[1] for line in lines] == ids
    assert all(" log " in line and "tail/agent-1 [info] line" in line for line in lines)
