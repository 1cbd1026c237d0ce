"""The one Redis client factory: plain URLs and ``redis+sentinel://`` alike.

Every Redis user of a node (the event log, the relay, the registry, the rate limiter, the
health check and the Socket.IO message queue) gets its client here, so all of them follow
the same primary (:mod:`swarmdash.backends` opens the stores on these clients). With a
Sentinel URL the client asks the sentinels where the primary is on every new connection;
a connection that meets a demoted primary (``READONLY``) is dropped and the next one goes
to the new primary, so a failover needs no restart of the node.

Clients fail fast (no hidden retries: a retried append could apply twice) and their pools
are bounded: a burst of requests waits up to the timeout for a connection instead of
opening hundreds of them.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from .settings import SENTINEL_SCHEME, SentinelUrl, parse_sentinel_url


class _BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """A Sentinel pool with BlockingConnectionPool's bound: at most ``max_connections``."""


def is_sentinel(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEME + "://")


def _options(timeout: float, read_timeout: float | None) -> dict[str, Any]:
    return {"socket_timeout": read_timeout or timeout, "socket_connect_timeout": timeout,
            "decode_responses": True, "protocol": 2, "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0}


def sentinel_of(parsed: SentinelUrl, timeout: float) -> Sentinel:
    """A client of the sentinels themselves (they may need no password when Redis does)."""
    auth = {k: v for k, v in (("username", parsed.username), ("password", parsed.password))
            if v}
    return Sentinel(list(parsed.sentinels), socket_timeout=timeout,
                    socket_connect_timeout=timeout, sentinel_kwargs={
                        "socket_timeout": timeout, "socket_connect_timeout": timeout,
                        "decode_responses": True, "retry": Retry(NoBackoff(), 0)},
                    db=parsed.db, **auth)


def connect(url: str, timeout: float, *, read_timeout: float | None = None,
            max_connections: int = 50) -> redis.Redis:
    """A client of the primary behind ``url`` (a Sentinel URL follows failovers)."""
    options = _options(timeout, read_timeout)
    if not is_sentinel(url):
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout, **options)
        return redis.Redis(connection_pool=pool)
    parsed = parse_sentinel_url(url)
    client: redis.Redis = sentinel_of(parsed, timeout).master_for(
        parsed.service, connection_pool_class=_BlockingSentinelPool,
        max_connections=max_connections, timeout=timeout, **options)
    return client


def manager_options(url: str, timeout: float) -> tuple[str, dict[str, Any]]:
    """(URL, redis_options) for python-socketio's RedisManager.

    It parses ``redis+sentinel://`` itself and builds ``Sentinel(sentinels, **options)``;
    the sentinels get the same connect timeout as the data connections.
    """
    options: dict[str, Any] = {"socket_connect_timeout": timeout, "health_check_interval": 10}
    if is_sentinel(url):
        options["sentinel_kwargs"] = {"socket_timeout": timeout,
                                      "socket_connect_timeout": timeout}
    return url, options
