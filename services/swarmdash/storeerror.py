"""The one error of a store that cannot answer now, and the one place Redis errors become it.

Every backend (the event log, the cluster registry, the ingest rate limiter) raises
:class:`BackendUnavailable` when its store is unreachable or not ready; each caller maps
that one type: the HTTP API to a 503 JSON error with ``Retry-After``, the relay and the
heartbeat to a log line and ``swarmdash_redis_errors_total``. The Redis backends run their
commands under :func:`redis_errors`, so no caller needs to know Redis's own exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis


class BackendUnavailable(RuntimeError):
    """The store cannot be reached: nothing was written; the caller may retry."""


#: Replies that mean "Redis is not usable right now" (as opposed to a bug in a command).
NOT_READY_REPLIES = ("LOADING", "MISCONF", "OOM", "NOREPLICAS", "MASTERDOWN", "TRYAGAIN",
                     "READONLY")


@contextmanager
def redis_errors() -> Iterator[None]:
    """Raise :class:`BackendUnavailable` for a Redis that is unreachable (connection refused
    or reset, a timeout, no primary known to the sentinels) or not ready (a reply in
    :data:`NOT_READY_REPLIES`); any other Redis error is a bug and passes unchanged.

    A block (``with redis_errors():``) or, as ``@redis_errors()``, a whole method.
    """
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BackendUnavailable(f"redis unreachable: {exc}") from exc
    except redis.ResponseError as exc:
        if str(exc).startswith(NOT_READY_REPLIES):
            raise BackendUnavailable(f"redis not ready: {exc}") from exc
        raise
