"""Redis with Sentinel, real processes: a primary, two replicas and three sentinels.

A node configured with ``redis+sentinel://`` follows the primary through a failover with
every one of its Redis users (ingest and the rate limiter, the relay, /health, the cluster
registry, the Socket.IO queue), and ``INGEST_MIN_REPLICAS`` keeps an accepted event from
being lost with the primary: ingest answers 202 only once a replica holds the batch,
relays deliver only what a replica holds, and a retry with the same Idempotency-Key is a
duplicate when the first attempt survived and is stored when it did not.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from swarmdash.backends import open_event_log
from swarmdash.eventlog import BackendUnavailable
from swarmdash.eventlog.base import BatchKey
from swarmdash.events import batch_digest, validate_batch
from swarmdash.settings import load_settings
from tests.helpers import (
    AGENT_HEADERS,
    DashClient,
    Node,
    free_port,
    metric_value,
    node_env,
    start_node,
    wait_for,
)
from tests.sentinel import SentinelRedis

from .test_cluster import notify

pytestmark = pytest.mark.integration


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[SentinelRedis]:
    topology = SentinelRedis(tmp_path / "redis").start()
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture
def node(sentinel: SentinelRedis, tmp_path: Path) -> Iterator[Node]:
    env = node_env(sentinel.url, "node1", free_port(), INGEST_MIN_REPLICAS="1",
                   MESSAGE_QUEUE_CHANNEL=f"swarmdash-sentinel-{uuid.uuid4().hex[:8]}",
                   COALESCE_AGENT_UPDATES="false", HEARTBEAT_INTERVAL="0.5",
                   HEARTBEAT_TTL="3")
    started = start_node("node1", "gunicorn", env, tmp_path)
    try:
        yield started
    finally:
        started.process.stop()


def stored(seq: int) -> list[dict[str, Any]]:
    """Event ``seq`` as ingest validates it (with its timestamp)."""
    return validate_batch([log_event(seq)], max_events=1, max_event_bytes=65536)


def log_event(seq: int, swarm: str = "ha") -> dict[str, Any]:
    return {"type": "log", "swarm": swarm, "agent_id": "a1",
            "data": {"level": "info", "message": f"event {seq}", "seq": seq}}


def post(url: str, events: list[dict[str, Any]], key: str | None = None) -> requests.Response:
    headers = {**AGENT_HEADERS, **({"Idempotency-Key": key} if key else {})}
    return requests.post(f"{url}/api/v1/events", json=events, headers=headers, timeout=10)


def seqs(client: DashClient) -> list[int]:
    return [e["data"]["seq"] for e in client.delivered() if "seq" in e.get("data", {})]


def stream_seqs(url: str) -> list[int]:
    import json

    with redis.Redis.from_url(url, decode_responses=True) as r:
        return [json.loads(f["e"])["data"]["seq"] for _, f in r.xrange("swarmdash:events")]


def test_a_node_follows_the_primary_through_a_failover(
        sentinel: SentinelRedis, node: Node) -> None:
    client = DashClient(node.url).connect()
    try:
        assert client.subscribe(swarm="ha", channels=["log"])["ok"]
        assert post(node.url, [log_event(1)]).status_code == 202
        wait_for(lambda: seqs(client) == [1], 15, message="event 1 delivered")
        old = sentinel.kill_primary()
        new = sentinel.wait_new_primary(old)
        # ingest (and the rate limiter before it) write to the new primary: no restart,
        # and no READONLY answer from a demoted server
        wait_for(lambda: post(node.url, [log_event(2)], "after-failover").status_code == 202,
                 30, interval=0.2, message="ingest accepted on the new primary")
        wait_for(lambda: seqs(client) == [1, 2], 15, message="the relay follows the primary")
        assert node.health().status_code == 200
        beat = requests.get(f"{node.url}/api/v1/cluster", timeout=5).json()["nodes"][0]["ts"]
        wait_for(lambda: requests.get(f"{node.url}/api/v1/cluster", timeout=5).json()
                 ["nodes"][0]["ts"] > beat, 10, message="heartbeats on the new primary")
        # the Socket.IO queue follows it too: an emit from another process arrives
        channel = node.process.env["MESSAGE_QUEUE_CHANNEL"]  # type: ignore[index]
        wait_for(lambda: (notify(sentinel.url, "after failover", channel),
                          client.events("system_alert"))[1], 30, interval=1.0,
                 message="notify through the queue after the failover")
        assert stream_seqs(f"redis://127.0.0.1:{new}/0") == [1, 2]
        assert metric_value(node.url, "swarmdash_redis_primary_changes_total") >= 1
    finally:
        client.close()
    assert "ReadOnlyError" not in node.process.tail(400)


def test_switchover_leaves_no_readonly_loop(sentinel: SentinelRedis, node: Node) -> None:
    from swarmdash.cluster.processes import wait_until

    assert post(node.url, [log_event(1)]).status_code == 202
    old = sentinel.primary()
    new = sentinel.topology.switchover(wait_until)
    assert new != old and sentinel.topology.role(old) == "slave"
    wait_for(lambda: post(node.url, [log_event(2)], "after-switch").status_code == 202, 30,
             interval=0.2, message="ingest accepted after the switchover")
    for seq in range(3, 8):  # every later request goes to the new primary
        assert post(node.url, [log_event(seq)]).status_code == 202
    assert stream_seqs(f"redis://127.0.0.1:{new}/0") == list(range(1, 8))


def wait_count(port: int) -> int:
    """WAIT commands the server has answered (INFO commandstats)."""
    with redis.Redis(port=port, decode_responses=True) as r:
        return int(r.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))


def freeze_replicas(sentinel: SentinelRedis) -> list[int]:
    primary = sentinel.primary()
    replicas = [p for p in sentinel.topology.server_ports if p != primary]
    for port in replicas:
        sentinel.server(port).signal(signal.SIGSTOP)
    return replicas


def thaw(sentinel: SentinelRedis, replicas: list[int]) -> None:
    for port in replicas:
        sentinel.server(port).signal(signal.SIGCONT)


def test_ingest_waits_for_a_replica_and_the_relay_delivers_only_replicated_entries(
        sentinel: SentinelRedis, node: Node) -> None:
    client = DashClient(node.url).connect()
    try:
        assert client.subscribe(swarm="ha", channels=["log"])["ok"]
        replicas = freeze_replicas(sentinel)
        resumed = DashClient(node.url).connect()
        try:
            # with nothing unreplicated to hold back, a resume works without replicas, even
            # once the relay has waited in vain for them (two WAITs answered by the primary)
            waits = wait_count(sentinel.primary())
            wait_for(lambda: wait_count(sentinel.primary()) >= waits + 2, 15,
                     message="the relay's replica waits timing out")
            ack = resumed.subscribe(swarm="ha", channels=["log"], since=client.cursor)
            assert ack["ok"] and not ack["gap"], ack
            refused = post(node.url, [log_event(1)], "batch-1")
            assert refused.status_code == 503 and refused.headers["Retry-After"]
            # the batch is on the primary, but no replica holds it: nobody is shown it
            wait_for(lambda: metric_value(node.url, 'swarmdash_replica_wait_short_total'
                                                    '{op="read"}') >= 1, 15,
                     message="the relay holding back an unreplicated entry")
            assert seqs(client) == []
        finally:
            thaw(sentinel, replicas)
        wait_for(lambda: seqs(client) == [1] and seqs(resumed) == [1], 15,
                 message="delivered once replicated")
        retried = post(node.url, [log_event(1)], "batch-1")
        assert retried.status_code == 202 and retried.json()["duplicate"] is True
        assert stream_seqs(f"redis://127.0.0.1:{sentinel.primary()}/0") == [1]
        assert seqs(client) == [1]
    finally:
        client.close()
        resumed.close()


def test_a_retry_is_stored_when_the_failover_lost_the_first_attempt(
        sentinel: SentinelRedis, tmp_path: Path) -> None:
    settings = load_settings({"REDIS_URL": sentinel.url, "INGEST_MIN_REPLICAS": "1",
                              "INGEST_REPLICA_TIMEOUT_MS": "300"}, env_file=None)
    log = open_event_log(settings)
    try:
        log.append(stored(0))  # replicated
        lost = stored(1)  # one batch, sent again as is: same key, same digest
        lost_batch = BatchKey("tests", "lost-batch", batch_digest(lost))
        replicas = freeze_replicas(sentinel)
        old = sentinel.primary()
        with redis.Redis(port=old) as primary:
            # more than the sockets to the frozen replicas buffer: what follows stays in
            # the primary's memory, and dies with it
            primary.set("filler", b"x" * (64 << 20))
        with pytest.raises(BackendUnavailable, match="replicas"):
            log.append_once(lost, lost_batch)
        sentinel.server(old).kill()
        thaw(sentinel, replicas)
        new = sentinel.wait_new_primary(old)
        deadline = time.monotonic() + 30
        while True:  # the publisher's retry loop, with the same key
            try:
                ids, duplicate = log.append_once(lost, lost_batch)
                break
            except BackendUnavailable:
                assert time.monotonic() < deadline, "ingest never came back"
                time.sleep(0.2)  # Retry-After
        assert duplicate is False and len(ids) == 1
        assert stream_seqs(f"redis://127.0.0.1:{new}/0") == [0, 1]
    finally:
        log.close()
