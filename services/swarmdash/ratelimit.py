"""Per-key ingest rate limit: a token bucket shared by every node.

Each API key (or, with authentication off, all publishers together) owns a bucket of
``INGEST_BURST`` tokens refilled at ``INGEST_RATE_LIMIT`` tokens per second; a request costs
one token per event. The Redis bucket is updated by one Lua script using the Redis clock, so
every node draws from the same bucket and node clocks do not matter. A refused request costs
nothing and learns how long to wait (``Retry-After``).
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import redis

from .keys import Keys
from .storeerror import redis_errors

#: The bucket of requests made without an API key (authentication disabled).
ANONYMOUS = "anonymous"

# KEYS[1] bucket; ARGV rate (tokens/s), burst (tokens), cost (tokens).
# Returns {allowed (0/1), seconds to wait (string: Lua numbers become integers in replies)}.
_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate) end
if cost <= tokens then
  tokens = tokens - cost
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
  return {1, '0'}
end
return {0, tostring((cost - tokens) / rate)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until the same request would be allowed

    @property
    def retry_after_header(self) -> str:
        """Whole seconds for ``Retry-After`` (at least 1)."""
        return str(max(1, math.ceil(self.retry_after)))


class RateLimiter(ABC):
    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = burst

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key_id: str, cost: int) -> Decision:
        """Spend ``cost`` tokens of ``key_id``'s bucket, or say how long to wait."""
        if not self.enabled or cost <= 0:
            return Decision(True)
        return self._take(key_id, cost)

    @abstractmethod
    def _take(self, key_id: str, cost: int) -> Decision: ...


class MemoryRateLimiter(RateLimiter):
    """The buckets of a single node (the embedded, Redis-less mode)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        super().__init__(rate, burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _take(self, key_id: str, cost: int) -> Decision:
        with self._lock:
            now = self.clock()
            tokens, ts = self._buckets.get(key_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - ts) * self.rate)
            if cost <= tokens:
                self._buckets[key_id] = (tokens - cost, now)
                return Decision(True)
            self._buckets[key_id] = (tokens, now)
            return Decision(False, (cost - tokens) / self.rate)

    def forget(self, key_id: str) -> None:
        """Drop the bucket of a key that is gone (a closed connection)."""
        with self._lock:
            self._buckets.pop(key_id, None)


class RedisRateLimiter(RateLimiter):
    """Buckets in Redis, shared by every node of the cluster."""

    def __init__(self, conn: redis.Redis, keys: Keys, rate: float, burst: int):
        super().__init__(rate, burst)
        self.keys = keys
        self._script = conn.register_script(_BUCKET_LUA)

    @redis_errors()
    def _take(self, key_id: str, cost: int) -> Decision:
        allowed, wait = self._script(keys=[self.keys.rate_limit(key_id)],
                                     args=[self.rate, self.burst, cost])
        return Decision(bool(int(allowed)), float(wait))

