"""batching.py: one room's windows, leading-edge flush, coalescing and cursors.

The clock is passed in (``now``), so every timing here is deterministic.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from swarmdash.batching import Emission, Room, replay_emissions
from swarmdash.cursor import Cursor, StreamId, format_id, parse_id
from swarmdash.events import AGENT_CRITICAL, CHANNELS, SYSTEM_ALERT, position_of
from swarmdash.subscription import Subscription

WINDOWS = {"agent": 0.2, "task": 0.2, "metric": 0.5, "log": 1.0}
ALL = frozenset(CHANNELS)


class Feed:
    """Plays a stream into one room the way the relay does (prev = the relay's position)."""

    def __init__(self, channels: frozenset[str] = ALL, *, max_batch: int = 500,
                 coalesce: bool = True, agent_id: str | None = None, swarm: str = "alpha",
                 windows: dict[str, float] | None = None):
        self.sub = Subscription(swarm, channels, agent_id)
        self.room = Room(self.sub, dict(windows or WINDOWS), max_batch, coalesce)
        self.head: StreamId = (1000, 0)
        self.stream: list[dict[str, Any]] = []
        self.out: list[Emission] = []

    def offer(self, event: dict[str, Any], now: float) -> list[Emission]:
        prev = self.head
        self.head = (self.head[0] + 1, 0)
        event = {**event, "id": format_id(self.head)}
        self.stream.append(event)
        if not self.sub.matches(event):
            return []
        emitted = self.room.offer(event, self.head, prev, now)
        self.out.extend(emitted)
        return emitted

    def tick(self, now: float) -> list[Emission]:
        emitted = [self.room.flush(c, self.head, now) for c in self.room.due(now)]
        self.out.extend(emitted)
        return emitted

    def last_id(self) -> str:
        return self.stream[-1]["id"]


def ev(kind: str, agent_id: str = "a1", swarm: str = "alpha", **data: Any) -> dict[str, Any]:
    defaults: dict[str, dict[str, Any]] = {
        "agent": {"status": "busy"}, "task": {"task_id": "t1", "status": "running"},
        "metric": {"name": "cpu", "value": 1.0}, "log": {"level": "info", "message": "m"},
        "alert": {"severity": "critical", "message": "fire"}}
    return {"type": kind, "swarm": swarm, "agent_id": agent_id, "ts": 1.0,
            "data": {**defaults[kind], **data}}


def ids(emission: Emission) -> list[str]:
    return [e["id"] for e in emission.payload["batch"]]


# --- windows -----------------------------------------------------------------------------

def test_first_event_after_a_quiet_window_goes_out_at_once() -> None:
    feed = Feed()
    [out] = feed.offer(ev("agent"), now=10.0)
    assert out.event == "agent_update_batch"
    assert ids(out) == [feed.last_id()]
    assert out.payload["count"] == 1 and out.payload["type"] == "agent"
    assert out.payload["swarm"] == "alpha" and out.payload["timestamp"] == 10.0
    assert out.payload["cursor"] == feed.last_id()


def test_events_inside_the_window_are_held_until_due() -> None:
    feed = Feed()
    feed.offer(ev("agent", "a1"), now=10.0)
    assert feed.offer(ev("agent", "a2"), now=10.05) == []
    assert feed.offer(ev("agent", "a3"), now=10.1) == []
    held = [e["id"] for e in feed.stream[1:]]
    assert feed.room.due(10.19) == []
    assert feed.room.due(10.21) == ["agent"]
    [out] = feed.tick(10.21)
    assert ids(out) == held
    assert feed.room.due(11.0) == []  # nothing left


def test_the_window_restarts_at_each_flush() -> None:
    feed = Feed()
    feed.offer(ev("agent", "a1"), now=0.0)
    feed.offer(ev("agent", "a2"), now=0.1)
    feed.tick(0.2)
    assert feed.offer(ev("agent", "a3"), now=0.3) == []  # 0.1 s after the last flush
    assert feed.room.due(0.39) == []
    assert len(feed.tick(0.4)) == 1
    assert len(feed.offer(ev("agent", "a4"), now=0.65)) == 1  # quiet again: leading edge


def test_channels_have_their_own_windows() -> None:
    feed = Feed()
    assert len(feed.offer(ev("agent", "a1"), now=0.0)) == 1
    assert len(feed.offer(ev("log"), now=0.0)) == 1
    assert feed.offer(ev("agent", "a2"), now=0.1) == []
    assert feed.offer(ev("log"), now=0.1) == []
    assert feed.room.due(0.25) == ["agent"]
    [agents] = feed.tick(0.25)
    assert agents.event == "agent_update_batch"
    assert feed.room.due(0.9) == []
    assert feed.room.due(1.0) == ["log"]
    [logs] = feed.tick(1.0)
    assert logs.event == "log_update_batch"


def test_next_due_is_when_the_first_waiting_window_ends() -> None:
    feed = Feed()
    assert feed.room.next_due() is None  # nothing waits: no timer needed
    feed.offer(ev("agent", "a1"), now=10.0)  # leading edge: sent, nothing waits
    feed.offer(ev("log"), now=10.0)
    assert feed.room.next_due() is None
    feed.offer(ev("log"), now=10.05)
    assert feed.room.next_due() == pytest.approx(11.0)
    feed.offer(ev("agent", "a2"), now=10.1)
    assert feed.room.next_due() == pytest.approx(10.2)  # the agent window ends first
    assert feed.room.due(feed.room.next_due() or 0) == ["agent"]
    feed.tick(10.2)
    assert feed.room.next_due() == pytest.approx(11.0)
    feed.tick(11.0)
    assert feed.room.next_due() is None


def test_windows_are_slots_of_the_clock_shared_by_channels_and_rooms() -> None:
    first, second = Feed(), Feed(swarm="beta")
    first.offer(ev("agent", "a1"), now=10.05)  # leading edges, at different moments
    first.offer(ev("task"), now=10.13)
    second.offer(ev("agent", "b1", swarm="beta"), now=10.17)
    first.offer(ev("agent", "a2"), now=10.15)
    first.offer(ev("task"), now=10.16)
    second.offer(ev("agent", "b2", swarm="beta"), now=10.19)
    # every window of 200 ms ends at the same multiple of 200 ms
    assert first.room.next_due() == pytest.approx(10.2)
    assert second.room.next_due() == pytest.approx(10.2)
    assert set(first.room.due(10.2)) == {"agent", "task"}  # one pass: one write per client
    assert len(first.tick(10.2)) == 2 and len(second.tick(10.2)) == 1
    first.offer(ev("agent", "a3"), now=10.25)
    first.offer(ev("metric"), now=10.3)  # a leading edge
    first.offer(ev("metric"), now=10.35)
    assert first.room.due(10.39) == []
    assert first.room.next_due() == pytest.approx(10.4)  # the agent window after 10.2
    first.tick(10.4)
    assert first.room.next_due() == pytest.approx(10.5)  # metric windows end every 500 ms


def test_a_window_ends_once_whatever_the_rounding() -> None:
    feed = Feed()
    feed.offer(ev("agent", "a1"), now=0.0)
    for k in range(1, 200):  # flushed at the end of each window, as the timer does
        feed.offer(ev("agent", f"a{k}"), now=0.2 * k - 0.1)
        end = feed.room.next_due()
        assert end == pytest.approx(0.2 * k)
        assert len(feed.tick(end or 0.0)) == 1
        assert feed.room.due(end or 0.0) == []  # not due again at the same moment


def test_a_full_batch_is_sent_at_once() -> None:
    feed = Feed(max_batch=3)
    feed.offer(ev("log"), now=0.0)
    assert feed.offer(ev("log"), now=0.1) == []
    assert feed.offer(ev("log"), now=0.2) == []
    [out] = feed.offer(ev("log"), now=0.3)
    assert ids(out) == [e["id"] for e in feed.stream[1:4]]
    assert out.payload["cursor"] == feed.last_id()


def test_unsubscribed_channels_are_not_delivered() -> None:
    feed = Feed(frozenset({"log"}))
    assert feed.offer(ev("metric"), now=0.0) == []
    assert feed.offer(ev("agent", status="busy"), now=0.0) == []
    assert feed.offer(ev("task"), now=0.0) == []
    assert feed.offer(ev("log", swarm="beta"), now=0.0) == []
    assert len(feed.offer(ev("log"), now=0.0)) == 1


def test_agent_filter() -> None:
    feed = Feed(agent_id="a2")
    assert feed.offer(ev("agent", "a1"), now=0.0) == []
    [out] = feed.offer(ev("agent", "a2"), now=0.0)
    assert out.payload["agent_id"] == "a2"


# --- coalescing ---------------------------------------------------------------------------

def test_coalescing_keeps_the_latest_update_of_each_agent() -> None:
    feed = Feed()
    feed.offer(ev("agent", "a1", status="idle"), now=0.0)
    feed.offer(ev("agent", "a1", status="busy"), now=0.05)
    feed.offer(ev("agent", "a2", status="busy"), now=0.06)
    feed.offer(ev("agent", "a1", status="waiting"), now=0.07)
    feed.offer(ev("agent", "a1", status="processing", step=4), now=0.08)
    [out] = feed.tick(0.2)
    batch = out.payload["batch"]
    assert [(e["agent_id"], e["data"]["status"]) for e in batch] == [
        ("a2", "busy"), ("a1", "processing")]
    assert batch[1]["data"]["step"] == 4
    assert out.payload["coalesced"] == 2
    assert out.payload["count"] == 2 and out.size == 2
    assert out.payload["cursor"] == feed.last_id()


def test_coalesced_count_is_per_batch() -> None:
    feed = Feed()
    feed.offer(ev("agent", "a1"), now=0.0)
    feed.offer(ev("agent", "a1"), now=0.05)
    feed.offer(ev("agent", "a1"), now=0.06)
    assert feed.tick(0.2)[0].payload["coalesced"] == 1
    feed.offer(ev("agent", "a1"), now=0.25)
    feed.offer(ev("agent", "a2"), now=0.26)
    [out] = feed.tick(0.4)
    assert "coalesced" not in out.payload


def test_coalesced_count_survives_a_flush_of_another_channel() -> None:
    feed = Feed()
    feed.offer(ev("agent", "a1"), now=0.0)
    feed.offer(ev("log"), now=0.0)
    feed.offer(ev("agent", "a1", status="idle"), now=0.05)
    feed.offer(ev("agent", "a1", status="waiting"), now=0.06)  # coalesces one
    [logs] = feed.offer(ev("log"), now=1.0)  # a log flush while agents are pending
    assert logs.event == "log_update_batch" and "coalesced" not in logs.payload
    [agents] = feed.tick(1.0)
    assert agents.payload["coalesced"] == 1


def test_without_coalescing_every_update_is_sent() -> None:
    feed = Feed(coalesce=False)
    for i, now in enumerate((0.0, 0.05, 0.06, 0.07)):
        feed.offer(ev("agent", "a1", step=i), now=now)
    [out] = feed.tick(0.2)
    assert [e["data"]["step"] for e in out.payload["batch"]] == [1, 2, 3]
    assert "coalesced" not in out.payload


def test_max_batch_counts_distinct_agents_when_coalescing() -> None:
    feed = Feed(max_batch=2)
    feed.offer(ev("agent", "a0"), now=0.0)
    assert feed.offer(ev("agent", "a1"), now=0.05) == []
    assert feed.offer(ev("agent", "a1"), now=0.06) == []  # still one distinct agent pending
    [out] = feed.offer(ev("agent", "a2"), now=0.07)
    assert [e["agent_id"] for e in out.payload["batch"]] == ["a1", "a2"]


# --- immediate events ---------------------------------------------------------------------

@pytest.mark.parametrize("status", ["error", "offline"])
def test_critical_agent_status_flushes_pending_agent_updates_first(status: str) -> None:
    feed = Feed()
    feed.offer(ev("agent", "a1"), now=0.0)
    feed.offer(ev("agent", "a2", status="busy"), now=0.05)
    pending = feed.last_id()
    out = feed.offer(ev("agent", "a3", status=status), now=0.06)
    assert [o.event for o in out] == ["agent_update_batch", AGENT_CRITICAL]
    assert ids(out[0]) == [pending]
    assert out[0].payload["cursor"] == pending  # the batch stops before the critical event
    critical = out[1].payload
    assert critical["id"] == feed.last_id() and critical["data"]["status"] == status
    assert critical["cursor"] == feed.last_id()
    assert feed.room.due(10.0) == []  # nothing left behind


def test_critical_agent_status_with_nothing_pending_is_alone() -> None:
    feed = Feed()
    [out] = feed.offer(ev("agent", "a1", status="offline"), now=0.0)
    assert out.event == AGENT_CRITICAL


def test_critical_agent_status_reaches_a_subscription_without_the_agent_channel() -> None:
    feed = Feed(frozenset({"log"}))
    feed.offer(ev("log"), now=0.0)
    feed.offer(ev("log"), now=0.1)  # pending
    pending_log = feed.stream[-1]["id"]
    [out] = feed.offer(ev("agent", status="error"), now=0.2)
    assert out.event == AGENT_CRITICAL
    cursor = Cursor.decode(out.payload["cursor"])
    assert cursor.position("alert") == parse_id(feed.last_id())
    assert cursor.position("log") < parse_id(pending_log)  # the pending log is still due


def test_alerts_are_emitted_at_once_and_keep_pending_positions() -> None:
    feed = Feed()
    feed.offer(ev("log"), now=0.0)
    feed.offer(ev("log"), now=0.1)
    pending_log = parse_id(feed.last_id())
    [out] = feed.offer(ev("alert", message="smoke"), now=0.2)
    assert out.event == SYSTEM_ALERT
    assert out.payload["data"]["message"] == "smoke"
    assert out.payload["id"] == feed.last_id()
    # names the subscription it was sent for: one client may get it in several
    assert out.payload["subscription"] == {"swarm": feed.room.sub.swarm,
                                           "agent_id": feed.room.sub.agent_id}
    cursor = Cursor.decode(out.payload["cursor"])
    assert cursor.position("alert") == parse_id(feed.last_id())
    assert cursor.position("log") < pending_log
    [logs] = feed.tick(1.0)
    assert ids(logs) == [format_id(pending_log)]
    assert logs.payload["cursor"] == feed.last_id()


# --- cursors -------------------------------------------------------------------------------

def test_cursor_is_composite_while_other_channels_hold_events() -> None:
    feed = Feed()
    feed.offer(ev("log"), now=0.0)  # leading edge
    flushed_log = feed.last_id()
    feed.offer(ev("log", message="pending"), now=0.1)
    pending_log = feed.last_id()
    [agents] = feed.offer(ev("agent"), now=0.1)  # leading edge of the agent channel
    agent_id = feed.last_id()
    cursor = Cursor.decode(agents.payload["cursor"])
    assert agents.payload["cursor"] == f"{agent_id};log={flushed_log}"
    # resuming from it: the flushed agent update is not repeated ...
    assert cursor.position("agent") == parse_id(agent_id)
    # ... and the pending log is not skipped
    assert cursor.position("log") < parse_id(pending_log)
    assert cursor.position("log") == parse_id(flushed_log)
    [logs] = feed.tick(1.0)
    assert ids(logs) == [pending_log]
    assert logs.payload["cursor"] == agent_id  # every channel delivered: plain again


def _resume_set(stream: list[dict[str, Any]], sub: Subscription, cursor: Cursor,
                head: str) -> list[str]:
    return [e["id"] for e in stream
            if parse_id(e["id"]) <= parse_id(head) and sub.matches(e)
            and parse_id(e["id"]) > cursor.position(position_of(e, sub.channels))]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("channels", [ALL, frozenset({"log", "metric"}),
                                      frozenset({"agent", "task"})])
def test_every_cursor_splits_the_stream_into_delivered_and_still_to_resume(
        seed: int, channels: frozenset[str]) -> None:
    """At each emission: delivered so far + a resume from its cursor = every matching event."""
    rng = random.Random(seed)
    feed = Feed(channels, max_batch=rng.choice([2, 5, 500]), coalesce=False)
    delivered: list[str] = []
    now = 0.0
    for _ in range(150):
        now += rng.choice([0.0, 0.01, 0.05, 0.3])
        kind = rng.choice(["agent", "agent", "task", "metric", "log", "log", "alert"])
        extra = {"status": rng.choice(["busy", "idle", "error", "offline"])} if (
            kind == "agent") else {}
        event = ev(kind, rng.choice(["a1", "a2"]), rng.choice(["alpha", "alpha", "beta"]),
                   **extra)
        emitted = feed.offer(event, now)
        if rng.random() < 0.3:
            emitted += feed.tick(now)
        for emission in emitted:
            batch = emission.payload.get("batch", [emission.payload])
            delivered.extend(e["id"] for e in batch)
            assert len(delivered) == len(set(delivered)), "an event was delivered twice"
            cursor = Cursor.decode(emission.payload["cursor"])
            head = format_id(cursor.base)
            resume = _resume_set(feed.stream, feed.sub, cursor, head)
            wanted = [e["id"] for e in feed.stream
                      if feed.sub.matches(e) and parse_id(e["id"]) <= cursor.base]
            assert not set(resume) & set(delivered), "a resume would repeat events"
            assert sorted(set(resume) | set(delivered) & set(wanted)) == wanted, (
                "a resume would skip events")
    feed.tick(now + 10)
    everything = [e["id"] for e in feed.stream if feed.sub.matches(e)]
    final = [e["id"] for emission in feed.out
             for e in emission.payload.get("batch", [emission.payload])]
    assert sorted(final) == everything


# --- replay --------------------------------------------------------------------------------

def _stream(*events: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**e, "id": f"{i}-0"} for i, e in enumerate(events, 1)]


def test_replay_groups_events_per_channel_in_stream_order() -> None:
    stream = _stream(ev("log", message="1"), ev("agent", "a1"), ev("log", message="2"),
                     ev("metric"), ev("agent", "a1", status="idle"), ev("log", message="3"))
    sub = Subscription("alpha", ALL)
    out = replay_emissions(sub, stream, "6-0", now=5.0, max_batch=100)
    by_event = {o.event: o for o in out}
    assert len(out) == 3
    assert ids(by_event["log_update_batch"]) == ["1-0", "3-0", "6-0"]
    assert ids(by_event["agent_update_batch"]) == ["2-0", "5-0"]  # replays are not coalesced
    assert ids(by_event["metric_update_batch"]) == ["4-0"]
    for o in out:
        assert o.payload["replay"] is True
        assert o.payload["cursor"] == "6-0"
        assert o.payload["count"] == len(o.payload["batch"])


def test_replay_emits_immediate_events_in_place() -> None:
    stream = _stream(ev("agent", "a1"), ev("agent", "a2"), ev("agent", "a1", status="offline"),
                     ev("agent", "a2", status="idle"), ev("alert"))
    out = replay_emissions(Subscription("alpha", ALL, "a1"), stream, "5-0", now=0.0,
                           max_batch=100)
    assert [o.event for o in out] == ["agent_update_batch", AGENT_CRITICAL, SYSTEM_ALERT,
                                      "agent_update_batch"]
    assert out[1].payload["subscription"] == {"swarm": "alpha", "agent_id": "a1"}
    assert ids(out[0]) == ["1-0", "2-0"]
    assert out[1].payload["id"] == "3-0" and out[1].payload["replay"] is True
    assert out[2].payload["id"] == "5-0"
    assert ids(out[3]) == ["4-0"]


def test_replay_splits_at_max_batch() -> None:
    stream = _stream(*[ev("log", message=str(i)) for i in range(7)])
    out = replay_emissions(Subscription("alpha", ALL), stream, "7-0", now=0.0, max_batch=3)
    assert [ids(o) for o in out] == [["1-0", "2-0", "3-0"], ["4-0", "5-0", "6-0"], ["7-0"]]


def test_replay_of_nothing_is_nothing() -> None:
    assert replay_emissions(Subscription("alpha", ALL), [], "1-0", now=0.0, max_batch=5) == []

