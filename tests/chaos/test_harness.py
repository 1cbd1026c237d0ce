"""The chaos harness's own accounting, without a cluster: which clients a fault affected."""

from __future__ import annotations

from typing import Any

import pytest

from .harness import Result, Sizes
from .ingest_feed import Tally


def client(number: int, disconnects: list[int], acks: list[int]) -> dict[str, Any]:
    return {"id": number, "swarm": "s", "disconnects": disconnects, "acks": acks}


def result(fault_at: float, clients: list[dict[str, Any]]) -> Result:
    return Result("t", Sizes.from_env(), Tally(), clients, fault_at, fault_at + 20,
                  fault_at + 30, {}, 0, 0, 0)


def test_a_client_dropped_in_the_faults_millisecond_is_affected() -> None:
    """The clients stamp whole milliseconds; the fault's moment has a fraction. A client
    the fault dropped within the same millisecond is one the fault affected."""
    fault_at = 1_796_094_993.0114  # Python's time.time() when the fault was sent
    dropped = 1_796_094_993_011    # the client's Date.now() as it dropped
    run = result(fault_at, [client(0, [dropped], [dropped - 900, dropped + 20_030]),
                            client(1, [dropped - 5_000], [dropped - 4_000])])
    assert [c["id"] for c in run.affected()] == [0]
    since_fault, outage = run.back_times()
    assert outage == [pytest.approx(20.03)]
    assert since_fault == [pytest.approx(0.0296, abs=1e-3)]  # back_from is 20 s on
