"""What one ``subscribe`` may cost the node: a bounded read of the log, a bounded rate.

The audit found that a resume whose filter matches nothing (an ``agent_id`` that does not
exist) from an old cursor read the whole stream on every subscribe. The log here counts
the entries the node reads from it, so the bound is checked by count, not by timing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from swarmdash.cursor import StreamId
from swarmdash.eventlog import MemoryEventLog
from swarmdash.events import Event
from swarmdash.node import node_of

STREAM = 50_000
SCAN_LIMIT = 2_000


class CountingLog(MemoryEventLog):
    """The in-memory log, counting the entries handed out by non-blocking reads (the
    reads of a resume; the relay's live reads block)."""

    def __init__(self, **kw: Any):
        super().__init__(**kw)
        self.scanned = 0

    def read(self, after: StreamId, count: int, block_ms: int | None = None) -> list[Event]:
        found = super().read(after, count, block_ms)
        if not block_ms:
            self.scanned += len(found)
        return found


def filled_log(ev: Any) -> tuple[CountingLog, str]:
    """A log of STREAM events of agent a1 (and one agent state); returns its first id."""
    log = CountingLog(maxlen=STREAM * 2)
    first = log.append([ev.agent("a1", "busy")])[0]
    for start in range(0, STREAM, 1000):
        log.append([ev.log(f"m{i}") for i in range(start, start + 1000)])
    return log, first


def test_a_resume_whose_filter_matches_nothing_reads_a_bounded_part_of_the_stream(
        make_app: Callable[..., Flask], ev: Any, wait_for: Callable[..., Any]) -> None:
    log, first = filled_log(ev)
    app = make_app(event_log=log, REPLAY_LIMIT="1000", REPLAY_SCAN_LIMIT=str(SCAN_LIMIT))
    node = node_of(app)
    wait_for(lambda: node.relay.connected, message="relay connected")
    client = app.extensions["socketio"].test_client(app)
    for _ in range(3):  # repeatable at will: each subscribe pays the bound, no more
        log.scanned = 0
        ack = client.emit("subscribe", {"swarm": "alpha", "agent_id": "nobody",
                                        "since": first}, callback=True)
        assert ack["ok"] is True, ack
        assert log.scanned <= SCAN_LIMIT, \
            f"read {log.scanned} entries of {STREAM} for one subscribe"
        assert ack["gap"] is True, "past the scan limit the client is told it has a gap"
        assert ack["snapshot"]["cursor"] == ack["cursor"]
        assert ack["snapshot"]["agents"] == [], "the snapshot follows the agent filter"
    client.disconnect()


def test_a_resume_within_the_scan_limit_replays_without_a_gap(
        make_app: Callable[..., Flask], ev: Any, wait_for: Callable[..., Any]) -> None:
    log = CountingLog()
    first = log.append([ev.log("start")])[0]
    ids = log.append([ev.log(f"m{i}", agent_id="a2" if i % 10 == 0 else "a1")
                      for i in range(500)])
    app = make_app(event_log=log, REPLAY_LIMIT="1000", REPLAY_SCAN_LIMIT="1000")
    node = node_of(app)
    wait_for(lambda: node.relay.connected, message="relay connected")
    client = app.extensions["socketio"].test_client(app)
    ack = client.emit("subscribe", {"swarm": "alpha", "agent_id": "a2", "since": first},
                      callback=True)
    assert ack["ok"] is True and ack["gap"] is False and ack["replayed"] == 50, ack
    replayed = [e["id"] for m in client.get_received() if m["name"] == "log_update_batch"
                for e in m["args"][0]["batch"]]
    assert replayed == ids[::10]
    client.disconnect()


def test_a_subscribe_flood_is_refused_with_a_clear_ack(
        make_app: Callable[..., Flask], wait_for: Callable[..., Any]) -> None:
    app = make_app(SUBSCRIBE_BURST="5", SUBSCRIBE_RATE_LIMIT="0.5")
    node = node_of(app)
    wait_for(lambda: node.relay.connected, message="relay connected")
    sio = app.extensions["socketio"]
    client = sio.test_client(app)
    acks = [client.emit("subscribe", {"swarm": "alpha", "channels": ["log"]}, callback=True)
            for _ in range(8)]
    assert [a["ok"] for a in acks] == [True] * 5 + [False] * 3, acks
    refused = acks[-1]
    assert refused["error"] == "rate_limited", refused
    assert "SUBSCRIBE_BURST=5" in refused["detail"] and 0 < refused["retry_after"] <= 2
    # the bucket is the connection's own: another client is not slowed down
    other = sio.test_client(app)
    assert other.emit("subscribe", {"swarm": "alpha"}, callback=True)["ok"] is True
    # and the refused client's subscription of before still holds
    assert node.relay.subscribers() == {"alpha": 2}
    client.disconnect()
    other.disconnect()
