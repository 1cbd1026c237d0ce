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
    assert result.affected() == [], "a Redis restart closed dashboard sessions"


def test_redis_paused(chaos: Chaos) -> None:
    """Redis frozen for every node, within REDIS_OUTAGE_GRACE: every node stays in HAProxy's
    pool, no session is closed, the dashboards are told, ingest answers 503 meanwhile, and
    the stream goes on from where it stopped once Redis is back."""
    cluster = chaos.cluster
    pid = cluster.state.pids["redis"]
    nodes = {n.host for n in cluster.running_nodes()}
    left: set[str] = set()

    def fault(run: Run) -> None:
        with frozen(pid):
            deadline = time.monotonic() + chaos.sizes.pause_s
            while time.monotonic() < deadline:  # watch the pool for the length of the fault
                left.update(nodes - cluster.up_hosts("socketio"))
                hold(0.25)
        run.fault_over = time.time()

    result = scenario(chaos, "redis-pause", fault)
    healthy_again(chaos)
    assert result.check() == []
    assert left == set(), f"HAProxy took {sorted(left)} out while Redis was frozen"
    assert result.affected() == [], "a Redis freeze closed dashboard sessions"
    told = result.told_store_unavailable()
    assert len(told) == len(result.clients), \
        f"{len(result.clients) - len(told)} clients were not told the store was away and back"
    t = result.tally
    assert t.refused_503 > 0, "ingest was not refused while Redis was frozen"
    assert t.refused_503 == t.refused_503_node, "HAProxy answered for nodes it should keep"


def test_one_node_cut_off_from_redis(chaos: Chaos) -> None:
    """Only the linked node loses Redis: it leaves the pool within 5 s and its clients
    resume on the others; the clients of the other nodes notice nothing."""
    cluster = chaos.cluster
    host = chaos.linked.host
    out_after: list[float] = []

    def fault(run: Run) -> None:
        with frozen(chaos.link.pid):
            cut_at = time.monotonic()
            wait_for(lambda: host not in cluster.up_hosts("socketio"), chaos.sizes.pause_s,
                     interval=0.1, message="HAProxy taking the node cut off from Redis out")
            out_after.append(time.monotonic() - cut_at)
            hold(max(0.0, chaos.sizes.pause_s - out_after[0]))
        run.fault_over = time.time()

    result = scenario(chaos, "node-cut", fault)
    healthy_again(chaos)
    print(f"node cut off from Redis: out of HAProxy after {out_after[0]:.2f} s")
    assert result.check() == []
    assert out_after[0] < 5, f"the node left the pool after {out_after[0]:.1f} s"
    moved = result.affected()
    assert moved, "the cut-off node had no clients: the scenario tested nothing"
    assert all(chaos.linked.name in c["nodes"] and c["nodes"][-1] != chaos.linked.name
               for c in moved), "a client of a healthy node was moved"


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
