"""Chaos: real failures under a steady stream of events and many subscribed clients.

Every scenario publishes numbered events through HAProxy (retrying refused batches with
their Idempotency-Key), has every client resume with its cursor after each reconnect, and
then holds the system to its contract: every event the API accepted (202) reached every
client of its swarm exactly once and in order, nothing refused was stored twice, every
refusal was a 503 with Retry-After or a connection error, and every client that lost its
connection subscribed again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from tests.helpers import wait_for

from .conftest import RESULTS, Chaos
from .harness import Result, Run, run_scenario

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def hold(seconds: float) -> None:
    """The length of a fault (not a synchronisation: the fault lasts this long)."""
    time.sleep(seconds)


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """SIGSTOP the process, SIGCONT it on the way out whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def scenario(chaos: Chaos, name: str, fault: Callable[[Run], None]) -> Result:
    result = run_scenario(name, chaos.cluster, chaos.sizes, chaos.log_dir, fault)
    RESULTS.append(result)
    print("\n" + "  ".join(f"{k}: {v}" for k, v in result.row().items()))
    return result


def healthy_again(chaos: Chaos) -> None:
    cluster = chaos.cluster
    cluster.wait_haproxy(lambda up: all(n.host in up for n in cluster.running_nodes()), 60)


def test_kill_9_one_node(chaos: Chaos) -> None:
    cluster = chaos.cluster
    victim = cluster.running_nodes()[0]

    def fault(run: Run) -> None:
        cluster.kill_node(victim.name)
        cluster.wait_haproxy(lambda up: victim.host not in up, 30)
        wait_for(lambda: all(c["connected"] for c in run.pool.report()), 90, interval=0.5,
                 message="the killed node's clients resubscribed on the others")
        cluster.restart_node(victim.name)

    result = scenario(chaos, "kill9", fault)
    assert result.check() == []
    assert result.affected(), "the killed node had no clients: the scenario tested nothing"
    assert all(victim.name in c["nodes"] for c in result.affected())


def test_redis_restart(chaos: Chaos) -> None:
    result = scenario(chaos, "redis-restart", lambda run: chaos.cluster.restart_redis())
    healthy_again(chaos)
    assert result.check() == []


def test_redis_paused(chaos: Chaos) -> None:
    """Longer than HAProxy's health checks allow: every node fails /health, HAProxy takes
    them all out and closes every session; clients resume once Redis is back."""
    pid = chaos.cluster.state.pids["redis"]

    def fault(run: Run) -> None:
        with frozen(pid):
            hold(chaos.sizes.pause_s)

    result = scenario(chaos, "redis-pause", fault)
    healthy_again(chaos)
    assert result.check() == []
    assert result.tally.refused_503 + sum(result.tally.refused_other.values()) > 0, \
        "nothing was refused while Redis was frozen"


def test_one_node_cut_off_from_redis(chaos: Chaos) -> None:
    def fault(run: Run) -> None:
        with frozen(chaos.link.pid):
            hold(chaos.sizes.pause_s)

    result = scenario(chaos, "node-cut", fault)
    healthy_again(chaos)
    assert result.check() == []


def test_haproxy_restart(chaos: Chaos) -> None:
    result = scenario(chaos, "haproxy-restart", lambda run: chaos.cluster.restart_haproxy())
    assert result.check() == []
    assert len(result.affected()) == len(result.clients), "a restart of HAProxy cuts everyone"


def test_clients_offline_then_back(chaos: Chaos) -> None:
    sizes = chaos.sizes
    away = list(range(sizes.offline_clients))

    def fault(run: Run) -> None:
        run.pool.offline(away, sizes.offline_s)
        run.back_from = time.time() + sizes.offline_s

    result = scenario(chaos, "client-offline", fault)
    assert result.check() == []
    assert sorted(c["id"] for c in result.affected()) == away
    assert all(c["replayed"] > 0 for c in result.affected()), \
        "a client back after being offline resumed without a replay"


def test_rolling_restart(chaos: Chaos) -> None:
    result = scenario(chaos, "rolling-restart", lambda run: chaos.cluster.rolling_restart())
    assert result.check() == []
    assert len(result.affected()) == len(result.clients), "every node restarted"
