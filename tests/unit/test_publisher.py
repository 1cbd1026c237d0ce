"""publisher.py: agents writing straight to the (fakeredis) Redis event log."""

from __future__ import annotations

from typing import Any

import pytest

from swarmdash import Publisher, PublishResult
from swarmdash.cursor import ZERO, parse_id
from swarmdash.eventlog import BackendUnavailable, IdempotencyConflict
from swarmdash.eventlog.redis import RedisEventLog
from swarmdash.events import ValidationError, validate_batch
from swarmdash.redisconn import connect
from swarmdash.settings import load_settings


@pytest.fixture
def log(fake_redis: Any) -> RedisEventLog:
    return RedisEventLog(fake_redis, maxlen=1000)


@pytest.fixture
def pub(log: RedisEventLog) -> Publisher:
    settings = load_settings(environ={"MAX_EVENTS_PER_REQUEST": "5"}, env_file=None)
    return Publisher(settings=settings, event_log=log)


def stored(log: RedisEventLog) -> list[dict[str, Any]]:
    return log.read(ZERO, 1000)


def test_publish_validates_and_appends(pub: Publisher, log: RedisEventLog, ev: Any) -> None:
    result = pub.publish([ev.agent("a1"), ev.log("hi")])
    assert isinstance(result, PublishResult)
    assert result.accepted == 2 and result.cursor == result.ids[-1]
    assert [e["id"] for e in stored(log)] == result.ids
    assert log.snapshot("alpha").agents["alpha"]["a1"]["id"] == result.ids[0]


def test_publish_one_event_dict(pub: Publisher, log: RedisEventLog, ev: Any) -> None:
    assert pub.publish(ev.metric("cpu", 0.3)).accepted == 1


def test_invalid_events_write_nothing(pub: Publisher, log: RedisEventLog, ev: Any) -> None:
    with pytest.raises(ValidationError) as info:
        pub.publish([ev.agent("a1"), ev.agent("a2", status="sleepy")])
    assert info.value.errors[0]["index"] == 1
    with pytest.raises(ValidationError):
        pub.publish([ev.log() for _ in range(6)])  # over MAX_EVENTS_PER_REQUEST
    assert stored(log) == []


def test_helpers_produce_valid_events(pub: Publisher, log: RedisEventLog) -> None:
    results = [
        pub.agent("alpha", "bot-1", "busy", task_id="t-1"),
        pub.task("alpha", "bot-1", "t-1", "completed", duration_s=3.5),
        pub.metric("alpha", "bot-1", "battery", 0.82, unit="%"),
        pub.metric("alpha", "bot-1", "temp", 41),
        pub.log_line("alpha", "bot-1", "warning", "slow down", area="dock"),
        pub.alert("alpha", "bot-1", "critical", "collision", ts=1_700_000_000.0),
    ]
    ids = [r.cursor for r in results]
    assert [parse_id(i) for i in ids] == sorted(parse_id(i) for i in ids)
    events = stored(log)
    assert [e["type"] for e in events] == ["agent", "task", "metric", "metric", "log", "alert"]
    for event in events:  # what was written passes the same validation again
        body = {k: v for k, v in event.items() if k != "id"}
        assert validate_batch(body, max_events=1, max_event_bytes=65536) == [body]
    agent, task, battery, temp, line, alert = events
    assert agent["data"] == {"status": "busy", "task_id": "t-1"}
    assert task["data"] == {"task_id": "t-1", "status": "completed", "duration_s": 3.5}
    assert battery["data"] == {"name": "battery", "value": 0.82, "unit": "%"}
    assert temp["data"] == {"name": "temp", "value": 41}
    assert line["data"] == {"level": "warning", "message": "slow down", "area": "dock"}
    assert alert["data"] == {"severity": "critical", "message": "collision"}
    assert alert["ts"] == 1_700_000_000.0
    assert agent["ts"] > 1_600_000_000  # filled in when not given
    snap = log.snapshot("alpha")
    assert snap.tasks["alpha"]["t-1"]["data"]["status"] == "completed"


def test_helpers_refuse_bad_values(pub: Publisher, log: RedisEventLog) -> None:
    with pytest.raises(ValidationError):
        pub.agent("alpha", "bot-1", "dancing")
    with pytest.raises(ValidationError):
        pub.metric("alpha", "bot-1", "cpu", float("nan"))
    with pytest.raises(ValidationError):
        pub.log_line("alpha", "bot 1", "info", "bad agent id")
    with pytest.raises(ValidationError):
        pub.alert("alpha", "bot-1", "apocalyptic", "x")
    assert stored(log) == []


def test_needs_a_redis_url_or_an_event_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("SWARMDASH_ENV_FILE", raising=False)
    with pytest.raises(ValueError, match="Redis URL"):
        Publisher(settings=load_settings(environ={}, env_file=None))


def test_unreachable_redis_raises_backend_unavailable(closed_url: str, ev: Any) -> None:
    settings = load_settings(environ={}, env_file=None)
    with Publisher(closed_url, settings=settings) as pub:
        assert pub.settings.redis_url == closed_url
        with pytest.raises(BackendUnavailable):
            pub.agent("alpha", "bot-1", "idle")
    log = RedisEventLog(connect(closed_url, 0.2))
    with Publisher(settings=settings, event_log=log) as pub, pytest.raises(BackendUnavailable):
        pub.publish(ev.log())


def test_publish_with_an_idempotency_key_stores_once(pub: Publisher, ev: Any) -> None:
    batch = [ev.log("x")]
    first = pub.publish(batch, idempotency_key="agent-7:42")
    again = pub.publish(batch, idempotency_key="agent-7:42")
    assert again.duplicate and again.ids == first.ids and not first.duplicate
    # a retry of events without ts (filled in at each call) is still the same batch
    untimed = {"type": "log", "swarm": "alpha", "agent_id": "a1",
               "data": {"level": "info", "message": "no ts"}}
    first = pub.publish(untimed, idempotency_key="agent-7:43")
    assert pub.publish(untimed, idempotency_key="agent-7:43").ids == first.ids
    with pytest.raises(IdempotencyConflict, match="agent-7:42"):
        pub.publish([ev.log("not x")], idempotency_key="agent-7:42")
    with pytest.raises(ValueError):
        pub.publish([ev.log("x")], idempotency_key="bad key")
