"""The slow-consumer watchdog closes only connections whose queue is over the limit."""

from __future__ import annotations

import queue
from typing import Any

from swarmdash import metrics
from swarmdash.watchdog import SlowConsumerWatchdog


class FakeSocket:
    def __init__(self, queued: int, closed: bool = False):
        self.queue: queue.Queue[int] = queue.Queue()
        for i in range(queued):
            self.queue.put(i)
        self.closed = closed
        self.closing = False
        self.close_calls: list[dict[str, Any]] = []

    def close(self, **kwargs: Any) -> None:
        self.close_calls.append(kwargs)
        self.closing = True


class FakeEngine:
    def __init__(self, sockets: dict[str, FakeSocket]):
        self.sockets = sockets


def test_only_connections_over_the_limit_are_closed_without_waiting() -> None:
    sockets = {"ok": FakeSocket(10), "edge": FakeSocket(10), "slow": FakeSocket(11),
               "gone": FakeSocket(500, closed=True)}
    watchdog = SlowConsumerWatchdog(FakeEngine(sockets), max_queue=10, sleep=lambda s: None)
    before = metrics.SLOW_CONSUMER_DROPS._value.get()
    assert watchdog.check() == 1
    assert sockets["slow"].close_calls == [{"wait": False, "abort": False}]
    assert not sockets["ok"].close_calls and not sockets["edge"].close_calls
    assert not sockets["gone"].close_calls
    assert metrics.SLOW_CONSUMER_DROPS._value.get() == before + 1
    assert watchdog.check() == 0  # already closing: not counted twice
