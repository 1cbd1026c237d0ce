"""The slow-consumer watchdog closes connections over a limit that stop reading, or that stay
over it longer than the grace time; a client reading a large backlog is left alone."""

from __future__ import annotations

import queue
from typing import Any

from swarmdash import metrics
from swarmdash.watchdog import SlowConsumerWatchdog


class Packet:
    def __init__(self, data: str):
        self.data = data


class FakeSocket:
    def __init__(self, queued: int, closed: bool = False, size: int = 1):
        self.queue: queue.Queue[Packet] = queue.Queue()
        for _ in range(queued):
            self.queue.put(Packet("x" * size))
        self.closed = closed
        self.closing = False
        self.close_calls: list[dict[str, Any]] = []

    def close(self, **kwargs: Any) -> None:
        self.close_calls.append(kwargs)
        self.closing = True


class FakeOutbox:
    def __init__(self, backlog_bytes: int):
        self.backlog = [b""]
        self.backlog_bytes = backlog_bytes
        self.sent_bytes = 0


class FakeEngine:
    def __init__(self, sockets: dict[str, Any]):
        self.sockets = sockets


def watchdog(sockets: dict[str, Any], clock: list[float], **limits: Any) -> SlowConsumerWatchdog:
    return SlowConsumerWatchdog(FakeEngine(sockets), sleep=lambda s: None,
                                clock=lambda: clock[0], **limits)


def test_connections_over_the_limit_that_read_nothing_are_closed_at_once() -> None:
    sockets = {"ok": FakeSocket(10), "edge": FakeSocket(10), "slow": FakeSocket(11),
               "gone": FakeSocket(500, closed=True)}
    clock = [0.0]
    dog = watchdog(sockets, clock, max_queue=10, grace_s=5)
    before = metrics.SLOW_CONSUMER_DROPS._value.get()
    assert dog.check() == 0  # first seen over the limit
    clock[0] += 4
    assert dog.check() == 0  # it has taken nothing for 4 s: within the grace time
    clock[0] += 1
    assert dog.check() == 1
    assert sockets["slow"].close_calls == [{"wait": False, "abort": True}]
    assert not sockets["ok"].close_calls and not sockets["edge"].close_calls
    assert not sockets["gone"].close_calls
    assert metrics.SLOW_CONSUMER_DROPS._value.get() == before + 1
    assert dog.check() == 0  # already closing: not counted twice


def test_the_byte_limit_holds_whatever_the_packet_count() -> None:
    sockets = {"big": FakeSocket(3, size=400_000), "small": FakeSocket(3, size=1000)}
    clock = [0.0]
    dog = watchdog(sockets, clock, max_queue=1000, max_bytes=1_000_000, grace_s=5)
    dog.check()
    clock[0] += 5
    assert dog.check() == 1
    assert sockets["big"].close_calls and not sockets["small"].close_calls


def test_a_client_reading_its_backlog_is_kept_until_twice_the_byte_limit() -> None:
    outbox = FakeOutbox(1_500_000)
    sock = FakeSocket(0)
    sock.outbox = outbox  # type: ignore[attr-defined]
    clock = [0.0]
    dog = watchdog({"replaying": sock}, clock, max_queue=1000, max_bytes=1_000_000, grace_s=5)
    for _ in range(20):  # it takes something every second: a replay read at its own pace
        assert dog.check() == 0
        outbox.sent_bytes += 100_000
        clock[0] += 1
    assert not sock.close_calls
    outbox.backlog_bytes = 2_000_001  # falling behind its stream: far over the limit
    outbox.sent_bytes += 100_000
    assert dog.check() == 1


def test_a_connection_back_under_the_limit_starts_over() -> None:
    outbox = FakeOutbox(1_500_000)
    sock = FakeSocket(0)
    sock.outbox = outbox  # type: ignore[attr-defined]
    clock = [0.0]
    dog = watchdog({"c": sock}, clock, max_queue=1000, max_bytes=1_000_000)
    assert dog.check() == 0
    outbox.backlog_bytes = 10
    clock[0] += 1
    assert dog.check() == 0
    outbox.backlog_bytes = 1_500_000  # over again, but first seen now
    clock[0] += 1
    assert dog.check() == 0
    assert not sock.close_calls
