"""The token bucket of one node (embedded mode); the shared Redis bucket is tested live in
tests/integration/test_limits.py."""

from __future__ import annotations

from swarmdash.ratelimit import MemoryRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_takes_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(rate=10, burst=50, clock=clock)
    assert limiter.take("k", 50).allowed
    refused = limiter.take("k", 20)
    assert not refused.allowed
    assert refused.retry_after == 2.0  # 20 tokens at 10/s
    assert refused.retry_after_header == "2"
    clock.now += 1.0
    assert not limiter.take("k", 20).allowed, "a refusal costs nothing, but 10 are not 20"
    clock.now += 1.0
    assert limiter.take("k", 20).allowed


def test_keys_have_their_own_buckets_and_refill_stops_at_the_burst() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(rate=10, burst=30, clock=clock)
    assert limiter.take("a", 30).allowed
    assert limiter.take("b", 30).allowed
    clock.now += 3600
    assert limiter.take("a", 30).allowed
    assert not limiter.take("a", 1).allowed


def test_rate_zero_means_unlimited() -> None:
    limiter = MemoryRateLimiter(rate=0, burst=1)
    assert not limiter.enabled
    assert all(limiter.take("k", 10_000).allowed for _ in range(10))


def test_retry_after_header_is_at_least_one_second() -> None:
    limiter = MemoryRateLimiter(rate=1000, burst=10, clock=Clock())
    assert limiter.take("k", 10).allowed
    refused = limiter.take("k", 1)
    assert refused.retry_after < 0.01 and refused.retry_after_header == "1"
