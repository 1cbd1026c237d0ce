"""One factory opens the three stores for the configured URL; one mapping turns Redis being
away into the project's own error, whatever store met it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.sentinel import MasterNotFoundError

from swarmdash.backends import Backends, open_backends, open_event_log
from swarmdash.cursor import ZERO
from swarmdash.eventlog import BackendUnavailable, MemoryEventLog
from swarmdash.eventlog.redis import RedisEventLog
from swarmdash.settings import load_settings
from swarmdash.storeerror import redis_errors

#: A bucket of two events refilled at one event per 100 s: a third event is refused.
TIGHT = {"MAX_EVENTS_PER_REQUEST": "1", "INGEST_BURST": "2", "INGEST_RATE_LIMIT": "0.01"}


def opened(**env: str) -> Backends:
    return open_backends(load_settings(environ={"REDIS_TIMEOUT": "0.2", **env}, env_file=None))


def test_without_a_redis_url_every_store_is_this_nodes_own(ev: Any) -> None:
    stores = opened(STREAM_MAXLEN="100", **TIGHT)
    stores.event_log.append([ev.log(str(i)) for i in range(105)])
    kept = [e["data"]["message"] for e in stores.event_log.read(ZERO, 1000)]
    assert kept == [str(i) for i in range(5, 105)], "STREAM_MAXLEN applies"
    assert stores.rate_limiter.take("k", 2).allowed and not stores.rate_limiter.take("k", 1).allowed
    stores.registry.beat({"node": "n1"}, ttl=60)
    assert stores.registry.live() == [{"node": "n1"}]
    assert opened().registry.live() == [], "each node alone: nothing shared between them"


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "redis+sentinel://127.0.0.1:1/0/sd"],
                         ids=["redis", "sentinel"])
def test_with_a_redis_url_every_store_says_unavailable_the_same_way(url: str, ev: Any) -> None:
    stores = opened(REDIS_URL=url, REDIS_KEY_PREFIX="p", **TIGHT)
    log = stores.event_log
    try:
        assert isinstance(log, RedisEventLog) and log.keys.stream == "p:events"
        assert log.blocking is not log.redis, "the relay's blocking read has its own pool"
        calls: list[Callable[[], object]] = [
            lambda: log.append([ev.agent()]), lambda: log.read(ZERO, 10),
            lambda: stores.registry.beat({"node": "n1"}, ttl=60), stores.registry.live,
            lambda: stores.rate_limiter.take("k", 1)]
        for call in calls:
            with pytest.raises(BackendUnavailable, match="redis unreachable"):
                call()
        assert log.ping() is False
    finally:
        log.close()


def test_a_given_event_log_stands_in_for_the_configured_one() -> None:
    mine = MemoryEventLog(maxlen=7)
    settings = load_settings(environ={}, env_file=None)
    assert open_backends(settings, event_log=mine).event_log is mine


def test_open_event_log_alone_follows_the_url(closed_url: str) -> None:
    assert isinstance(open_event_log(load_settings(environ={}, env_file=None)), MemoryEventLog)
    remote = open_event_log(load_settings(environ={"REDIS_URL": closed_url}, env_file=None))
    try:
        assert isinstance(remote, RedisEventLog)
    finally:
        remote.close()


@pytest.mark.parametrize("error", [
    redis.ConnectionError("Connection refused"), redis.TimeoutError("Timeout reading"),
    MasterNotFoundError("No master found for 'sd'"),
    redis.ResponseError("LOADING Redis is loading the dataset in memory"),
    redis.exceptions.ReadOnlyError("READONLY You can't write against a read only replica."),
], ids=lambda e: type(e).__name__ + ":" + str(e).split()[0])
def test_redis_away_or_not_ready_is_backend_unavailable(error: Exception) -> None:
    with pytest.raises(BackendUnavailable) as raised, redis_errors():
        raise error
    assert raised.value.__cause__ is error


def test_a_redis_error_that_is_a_bug_is_not_hidden() -> None:
    @redis_errors()
    def wrong() -> None:
        raise redis.ResponseError("ERR wrong number of arguments for 'xadd' command")

    with pytest.raises(redis.ResponseError, match="wrong number"):
        wrong()
