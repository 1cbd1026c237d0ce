"""redis+sentinel:// URLs: parsed and checked at start-up, one client factory for every
Redis user, the message queue built on the same URL; replication figures from INFO."""

from __future__ import annotations

import pytest
from socketio.redis_manager import parse_redis_sentinel_url

from swarmdash.app import client_manager
from swarmdash.redisconn import connect
from swarmdash.replication import replication_lag
from swarmdash.settings import (
    Settings,
    SettingsError,
    effective,
    load_settings,
    parse_sentinel_url,
)

URL = "redis+sentinel://app:p%40ss@10.0.0.1:26379,10.0.0.2:26380,sentinel-3:26381/2/swarmdash"


def load(**env: str) -> Settings:
    return load_settings(environ=env, env_file=None)


def test_the_url_python_socketio_reads_is_parsed_the_same_way() -> None:
    parsed = parse_sentinel_url(URL)
    assert parsed.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("sentinel-3", 26381))
    assert (parsed.db, parsed.service, parsed.username, parsed.password) == (
        2, "swarmdash", "app", "p@ss")
    sentinels, service, kwargs = parse_redis_sentinel_url(URL)
    assert [tuple(s) for s in sentinels] == list(parsed.sentinels)
    assert service == parsed.service and kwargs["db"] == parsed.db


def test_redis_url_and_message_queue_url_accept_it() -> None:
    s = load(REDIS_URL=URL, MESSAGE_QUEUE_URL=URL.replace("/2/", "/3/"))
    assert s.redis_url == URL and s.queue_url.endswith("/3/swarmdash")


@pytest.mark.parametrize(("url", "why"), [
    ("redis+sentinel://h1:26379,h2:26379/0", "service name"),
    ("redis+sentinel://h1:26379/0/", "service name"),
    ("redis+sentinel://h1:26379", "/<db>/<service_name>"),
    ("redis+sentinel://h1:26379/zero/swarmdash", "/<db>/<service_name>"),
    ("redis+sentinel://h1,h2:26379/0/swarmdash", "'h1' is not host:port"),
    ("redis+sentinel://h1:99999/0/swarmdash", "is not host:port"),
    ("redis+sentinel://h1:26379/0/swarmdash/extra", "service name"),
])
def test_a_bad_sentinel_url_fails_start_up_saying_what_is_wrong(url: str, why: str) -> None:
    for name in ("REDIS_URL", "MESSAGE_QUEUE_URL"):
        env = {name: url} | ({"REDIS_URL": "redis://h"} if name != "REDIS_URL" else {})
        with pytest.raises(SettingsError, match=name) as err:
            load(**env)
        assert why in str(err.value)


def test_the_password_is_masked_in_the_effective_settings() -> None:
    values = dict(effective(load(REDIS_URL=URL)))
    assert values["REDIS_URL"] == ("redis+sentinel://****@10.0.0.1:26379,10.0.0.2:26380,"
                                   "sentinel-3:26381/2/swarmdash")


def test_min_replicas_needs_redis() -> None:
    assert load().ingest_min_replicas == 0
    assert load(REDIS_URL=URL, INGEST_MIN_REPLICAS="1").ingest_min_replicas == 1
    with pytest.raises(SettingsError, match="INGEST_MIN_REPLICAS=1 needs REDIS_URL"):
        load(INGEST_MIN_REPLICAS="1")


def test_one_factory_follows_the_primary_through_the_sentinels() -> None:
    client = connect(URL, 1.5, max_connections=7)
    pool = client.connection_pool
    assert pool.service_name == "swarmdash"  # type: ignore[attr-defined]
    assert pool.max_connections == 7  # bounded: a burst waits instead of opening more
    kwargs = pool.connection_kwargs
    assert (kwargs["db"], kwargs["username"], kwargs["password"]) == (2, "app", "p@ss")
    sentinels = pool.sentinel_manager.sentinels  # type: ignore[attr-defined]
    assert [(s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs
             ["port"]) for s in sentinels] == [("10.0.0.1", 26379), ("10.0.0.2", 26380),
                                               ("sentinel-3", 26381)]
    client.close()


def test_the_socketio_queue_is_a_redis_manager_on_the_sentinel_url() -> None:
    manager = client_manager(URL, "swarmdash", timeout=1.5)
    assert type(manager).__name__ == "RedisManager"
    assert manager.redis_url == URL
    assert manager.redis_options["sentinel_kwargs"]["socket_connect_timeout"] == 1.5


def test_replication_lag_from_info() -> None:
    info = {"role": "master", "connected_slaves": 2, "master_repl_offset": 5000,
            "slave0": {"ip": "10.0.0.5", "port": 6379, "state": "online", "offset": 4900,
                       "lag": 0},
            "slave1": {"ip": "10.0.0.6", "port": 6379, "state": "online", "offset": 3000,
                       "lag": 4},
            "slave2": {"ip": "10.0.0.7", "port": 6379, "state": "wait_bgsave", "offset": 0,
                       "lag": 9}}
    assert replication_lag(info) == (2, 4.0, 2000)
    assert replication_lag({"role": "master", "master_repl_offset": 10}) == (0, 0.0, 0)
