"""The event log contract, run against the in-memory log and the Redis one (fakeredis)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from swarmdash.cursor import ZERO, Cursor, parse_id
from swarmdash.eventlog import (
    BackendUnavailable,
    BatchKey,
    EventLog,
    IdempotencyConflict,
    MemoryEventLog,
)
from swarmdash.eventlog.redis import RedisEventLog
from swarmdash.events import batch_digest
from swarmdash.keys import Keys
from swarmdash.redisconn import connect

Factory = Callable[..., EventLog]


def sids(events: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [parse_id(e["id"]) for e in events]


def test_empty_log(log_factory: Factory) -> None:
    log = log_factory()
    assert log.last_id() == ZERO
    assert log.trimmed_upto() == ZERO
    assert log.read(ZERO, 10) == []
    assert log.tail(5) == []
    snap = log.snapshot(None)
    assert snap.cursor == ZERO
    assert snap.view() == {"cursor": "0-0", "agents": [], "tasks": []}
    assert log.ping()


def test_append_returns_increasing_ids_and_stores_events(log_factory: Factory, ev: Any) -> None:
    log = log_factory()
    first = log.append([ev.agent("a1"), ev.log("one")])
    second = log.append([ev.metric("cpu", 0.5)])
    all_ids = [parse_id(i) for i in first + second]
    assert all_ids == sorted(all_ids) and len(set(all_ids)) == 3
    assert log.last_id() == all_ids[-1]
    events = log.read(ZERO, 100)
    assert [e["id"] for e in events] == first + second
    assert events[1]["data"] == {"level": "info", "message": "one"}
    assert {k for k in events[0] if k != "id"} == {"type", "swarm", "agent_id", "ts", "data"}


def test_many_appends_in_one_millisecond_stay_ordered(log_factory: Factory, ev: Any) -> None:
    log = log_factory()
    ids = [i for _ in range(50) for i in log.append([ev.log(), ev.log()])]
    parsed = [parse_id(i) for i in ids]
    assert parsed == sorted(parsed) and len(set(parsed)) == 100


def test_read_after_is_exclusive_and_counted(log_factory: Factory, ev: Any) -> None:
    log = log_factory()
    ids = log.append([ev.log(str(i)) for i in range(10)])
    assert [e["id"] for e in log.read(parse_id(ids[3]), 100)] == ids[4:]
    assert [e["id"] for e in log.read(parse_id(ids[3]), 2)] == ids[4:6]
    assert log.read(parse_id(ids[-1]), 100) == []
    # a position between two ids (a cursor from another swarm's event) works too
    ms, seq = parse_id(ids[5])
    assert [e["id"] for e in log.read((ms, seq), 1)] == [ids[6]]


def test_read_pages_through_without_gaps_or_repeats(log_factory: Factory, ev: Any) -> None:
    log = log_factory()
    ids = log.append([ev.log(str(i)) for i in range(25)])
    seen: list[str] = []
    position = ZERO
    while batch := log.read(position, 7):
        seen.extend(e["id"] for e in batch)
        position = parse_id(batch[-1]["id"])
    assert seen == ids


def test_read_blocking_returns_at_once_when_events_exist(log_factory: Factory,
                                                         ev: Any) -> None:
    log = log_factory()
    ids = log.append([ev.log()])
    started = time.monotonic()
    assert [e["id"] for e in log.read(ZERO, 10, block_ms=2000)] == ids
    assert time.monotonic() - started < 1.0


def test_tail_gives_the_newest_oldest_first(log_factory: Factory, ev: Any) -> None:
    log = log_factory()
    ids = log.append([ev.log(str(i)) for i in range(6)])
    assert [e["id"] for e in log.tail(3)] == ids[3:]
    assert [e["id"] for e in log.tail(100)] == ids


def test_trimming_moves_trimmed_upto(log_factory: Factory, ev: Any) -> None:
    """Trimming may be approximate (Redis ``MAXLEN ~``) but must be reported exactly."""
    log = log_factory(maxlen=10)
    ids: list[str] = []
    for _ in range(30):
        ids += log.append([ev.log() for _ in range(10)])
    kept = [e["id"] for e in log.read(ZERO, 10_000)]
    assert len(kept) < len(ids), "300 events with maxlen 10 must trim"
    assert kept == ids[-len(kept):]
    upto = log.trimmed_upto()
    assert upto >= parse_id(ids[0])
    # exactly the events above trimmed_upto are kept
    assert [i for i in ids if parse_id(i) > upto] == kept
    # a cursor at the first event is below it: a gap ...
    assert Cursor.decode(ids[0]).lowest < upto
    # ... a cursor at the oldest kept event is not
    assert not Cursor.decode(kept[0]).lowest < upto
    assert log.last_id() == parse_id(ids[-1])


def test_memory_trimming_is_exact() -> None:
    log = MemoryEventLog(maxlen=3)
    ev = {"type": "log", "swarm": "s", "agent_id": "a", "ts": 1.0,
          "data": {"level": "info", "message": "m"}}
    ids = log.append([ev] * 5)
    assert [e["id"] for e in log.read(ZERO, 10)] == ids[2:]
    assert log.trimmed_upto() == parse_id(ids[1])


def test_snapshot_holds_the_latest_state_per_agent(log_factory: Factory, ev: Any) -> None:
    log = log_factory()
    log.append([ev.agent("a1", "idle"), ev.agent("a2", "busy"), ev.log()])
    last = log.append([ev.agent("a1", "error", code=7), ev.agent("b1", "idle", swarm="beta")])
    snap = log.snapshot("alpha")
    assert snap.cursor == parse_id(last[-1])
    assert set(snap.agents["alpha"]) == {"a1", "a2"}
    assert snap.agents["alpha"]["a1"]["data"] == {"status": "error", "code": 7}
    assert snap.agents["alpha"]["a1"]["id"] == last[0]
    assert "beta" not in snap.agents
    view = snap.view()
    assert [(e["agent_id"], e["data"]["status"]) for e in view["agents"]] == [
        ("a2", "busy"), ("a1", "error")]  # oldest update first
    assert view["cursor"] == last[-1]
    assert [e["agent_id"] for e in snap.view("a2")["agents"]] == ["a2"]
    everything = log.snapshot(None).view()
    assert sorted(e["agent_id"] for e in everything["agents"]) == ["a1", "a2", "b1"]
    assert log.snapshot("nobody").view()["agents"] == []


def test_snapshot_keeps_open_tasks_and_a_bounded_task_history(log_factory: Factory,
                                                              ev: Any) -> None:
    log = log_factory(task_history=2)
    log.append([ev.task("t1", "running", ts=1.0), ev.task("t2", "queued", ts=2.0)])
    log.append([ev.task("t1", "completed", ts=3.0), ev.task("t3", "failed", ts=4.0),
                ev.task("t4", "completed", ts=5.0)])
    log.append([ev.task("t5", "running", ts=6.0), ev.task("x1", "completed", swarm="beta",
                                                          ts=7.0)])
    tasks = log.snapshot("alpha").tasks["alpha"]
    # t1 (oldest finished) fell out; open tasks are never dropped
    assert set(tasks) == {"t2", "t3", "t4", "t5"}
    assert tasks["t4"]["data"]["status"] == "completed"
    # a finished task that runs again leaves the history and counts as open
    log.append([ev.task("t3", "running", ts=8.0), ev.task("t6", "completed", ts=9.0),
                ev.task("t7", "completed", ts=10.0)])
    tasks = log.snapshot("alpha").tasks["alpha"]
    assert set(tasks) == {"t2", "t3", "t5", "t6", "t7"}
    assert log.snapshot("beta").tasks["beta"].keys() == {"x1"}


def test_task_history_zero_keeps_only_open_tasks(log_factory: Factory, ev: Any) -> None:
    log = log_factory(task_history=0)
    log.append([ev.task("t1", "completed"), ev.task("t2", "running")])
    assert set(log.snapshot("alpha").tasks["alpha"]) == {"t2"}


def test_a_batch_is_appended_whole(log_factory: Factory, ev: Any) -> None:
    """Readers see all of a batch or none of it, and its ids are contiguous."""
    log = log_factory()
    log.append([ev.log("before")])
    batches: list[list[str]] = []
    sizes: list[int] = []

    def writer() -> None:
        for _ in range(40):
            batches.append(log.append([ev.log(str(i)) for i in range(20)]))

    thread = threading.Thread(target=writer)
    thread.start()
    while thread.is_alive() or not sizes:
        sizes.append(len(log.read(ZERO, 100_000)) - 1)
    thread.join(5)
    assert all(size % 20 == 0 for size in sizes), f"half a batch was visible: {sizes}"
    everything = [e["id"] for e in log.read(ZERO, 100_000)]
    for batch in batches:
        start = everything.index(batch[0])
        assert everything[start:start + len(batch)] == batch, "batches interleaved"


def test_redis_batch_is_one_script_call(fake_redis: Any, ev: Any) -> None:
    """A failing write applies nothing: the Lua script is all-or-nothing per call."""
    log = RedisEventLog(fake_redis, maxlen=1000)
    log.append([ev.agent("a1")])
    calls: list[Any] = []
    original = fake_redis.evalsha

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(args)
        return original(*args, **kw)

    fake_redis.evalsha = counting
    ids = log.append([ev.agent("a2"), ev.task("t1", "running"), ev.log()])
    assert len(ids) == 3 and len(calls) == 1


def test_redis_keys_follow_the_prefix(fake_redis: Any, ev: Any) -> None:
    from swarmdash.keys import Keys

    log = RedisEventLog(fake_redis, keys=Keys("pfx"))
    log.append([ev.agent("a1"), ev.task("t1", "completed")])
    assert set(fake_redis.keys("*")) == {
        "pfx:events", "pfx:swarms", "pfx:swarm:alpha:agents", "pfx:swarm:alpha:tasks",
        "pfx:swarm:alpha:tasks:done"}
    assert fake_redis.smembers("pfx:swarms") == {"alpha"}


def test_memory_read_blocks_until_an_append(ev: Any, wait_for: Callable[..., Any]) -> None:
    log = MemoryEventLog()
    got: list[list[dict[str, Any]]] = []
    reader = threading.Thread(target=lambda: got.append(log.read(ZERO, 10, block_ms=10_000)))
    reader.start()
    wait_for(lambda: log._cond._waiters, message="reader waiting")  # type: ignore[attr-defined]
    started = time.monotonic()
    ids = log.append([ev.log()])
    reader.join(5)
    assert [e["id"] for e in got[0]] == ids
    assert time.monotonic() - started < 5, "the append did not wake the reader"


def test_memory_read_block_times_out_empty() -> None:
    assert MemoryEventLog().read(ZERO, 10, block_ms=20) == []


# --- an unreachable Redis ------------------------------------------------------------------

def test_unreachable_redis_raises_backend_unavailable(ev: Any, closed_url: str) -> None:
    log = RedisEventLog(connect(closed_url, 0.5), maxlen=1000)
    with pytest.raises(BackendUnavailable):
        log.append([ev.agent()])
    with pytest.raises(BackendUnavailable):
        log.read(ZERO, 10)
    with pytest.raises(BackendUnavailable):
        log.read(ZERO, 10, block_ms=50)
    with pytest.raises(BackendUnavailable):
        log.tail(5)
    with pytest.raises(BackendUnavailable):
        log.snapshot("alpha")
    with pytest.raises(BackendUnavailable):
        log.last_id()
    assert log.ping() is False


def test_redis_not_ready_replies_count_as_unavailable(fake_redis: Any) -> None:
    log = RedisEventLog(fake_redis)

    def loading(*_args: Any, **_kwargs: Any) -> None:
        raise redis.ResponseError("LOADING Redis is loading the dataset in memory")

    fake_redis.xrange = loading
    with pytest.raises(BackendUnavailable, match="not ready"):
        log.read(ZERO, 10)


def key(name: str, batch: Any, scope: str = "fleet-a") -> BatchKey:
    return BatchKey(scope, name, batch_digest(batch))


def test_a_batch_retried_with_its_idempotency_key_is_stored_once(
        log_factory: Factory, ev: Any) -> None:
    log = log_factory()
    batch = [ev.agent("a1", "busy"), ev.log("started")]
    ids, duplicate = log.append_once(batch, key("batch-1", batch))
    assert not duplicate and len(ids) == 2
    again, duplicate = log.append_once(batch, key("batch-1", batch))
    assert duplicate and again == ids
    assert [e["id"] for e in log.read(ZERO, 100)] == ids
    other, duplicate = log.append_once(batch, key("batch-2", batch))
    assert not duplicate and other != ids
    plain = log.append(batch) + log.append(batch)  # no key: every call stores
    assert len(log.read(ZERO, 100)) == 4 + len(plain)


def test_an_idempotency_key_belongs_to_one_api_key(log_factory: Factory, ev: Any) -> None:
    """The audit: key B's batch under key A's header name was dropped as A's duplicate."""
    log = log_factory()
    mine = [ev.log("fleet a's batch", swarm="alpha")]
    theirs = [ev.log("fleet b's batch", swarm="beta")]
    a_ids, _ = log.append_once(mine, key("batch-0001", mine, scope="fleet-a"))
    b_ids, duplicate = log.append_once(theirs, key("batch-0001", theirs, scope="fleet-b"))
    assert not duplicate and b_ids != a_ids
    assert [e["data"]["message"] for e in log.read(ZERO, 100)] == [
        "fleet a's batch", "fleet b's batch"]
    # each key's own retry is still a duplicate of its own batch
    assert log.append_once(theirs, key("batch-0001", theirs, scope="fleet-b")) == (b_ids, True)
    assert log.append_once(mine, key("batch-0001", mine, scope="fleet-a")) == (a_ids, True)


def test_a_different_batch_under_a_used_key_is_refused_and_not_stored(
        log_factory: Factory, ev: Any) -> None:
    log = log_factory()
    first = [ev.log("first")]
    log.append_once(first, key("batch-7", first))
    changed = [ev.log("something else")]
    with pytest.raises(IdempotencyConflict, match="'batch-7'") as raised:
        log.append_once(changed, key("batch-7", changed))
    assert raised.value.key.name == "batch-7"
    assert [e["data"]["message"] for e in log.read(ZERO, 100)] == ["first"]


def test_the_digest_ignores_key_order_and_whitespace_not_content(ev: Any) -> None:
    batch = [ev.log("x", ts=1.5)]
    reordered = [dict(reversed(list(batch[0].items())))]
    assert batch_digest(batch) == batch_digest(reordered)
    assert batch_digest(batch) == batch_digest(json.loads(json.dumps(batch, indent=2)))
    assert batch_digest(batch) != batch_digest([ev.log("y", ts=1.5)])


def test_idempotency_keys_are_bounded_per_api_key(log_factory: Factory, ev: Any) -> None:
    """IDEMPOTENCY_MAX_KEYS: the oldest key of an API key is forgotten, not the others'."""
    log = log_factory(idempotency_max_keys=3)
    other = [ev.log("other fleet")]
    other_ids, _ = log.append_once(other, key("o-1", other, scope="fleet-b"))
    batches = [[ev.log(f"m{i}")] for i in range(5)]
    for i, batch in enumerate(batches):
        log.append_once(batch, key(f"k-{i}", batch))
    # k-0 and k-1 are forgotten: their retry is stored again; k-2..k-4 are still known
    assert log.append_once(batches[0], key("k-0", batches[0]))[1] is False
    assert all(log.append_once(b, key(f"k-{i}", b))[1] for i, b in enumerate(batches)
               if i >= 3)
    assert log.append_once(other, key("o-1", other, scope="fleet-b")) == (other_ids, True)


def test_redis_keeps_the_index_of_idempotency_keys_bounded(fake_redis: Any, ev: Any) -> None:
    log = RedisEventLog(fake_redis, keys=Keys("unit"), idempotency_max_keys=2)
    for i in range(6):
        batch = [ev.log(f"m{i}")]
        log.append_once(batch, key(f"k-{i}", batch))
    assert fake_redis.zcard("unit:idem-index:fleet-a") == 2
    assert sorted(fake_redis.scan_iter("unit:idem:*")) == [
        "unit:idem:fleet-a:k-4", "unit:idem:fleet-a:k-5"]
    assert 0 < fake_redis.ttl("unit:idem-index:fleet-a") <= 600


def test_idempotency_keys_expire(ev: Any, wait_for: Callable[..., Any]) -> None:
    log = MemoryEventLog(idempotency_ttl=0.05)
    batch = [ev.log()]
    first, _ = log.append_once(batch, key("k", batch))
    ids, duplicate = log.append_once(batch, key("k", batch))
    assert duplicate and ids == first
    fresh = wait_for(lambda: (lambda r: r[0] if not r[1] else None)(
        log.append_once(batch, key("k", batch))), message="the idempotency key to expire")
    assert fresh != first
