"""Chaos with Redis Sentinel: the primary dies, or is moved during a rolling restart.

The cluster runs ``swarmdash cluster up --redis sentinel``'s topology (a primary, two
replicas, three sentinels) with ``INGEST_MIN_REPLICAS=1``. Both scenarios hold the chaos
suite's contract (every event answered 202 reaches every client of its swarm once, in
order; nothing stored twice) and report how long ingest and the clients took to recover.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from swarmdash.cluster.local import LocalCluster
from tests.helpers import wait_for
from tests.local_cluster import cluster_ports, new_cluster
from tests.sentinel import TEST_TIMING, free_port_run

from .conftest import RESULTS
from .harness import Result, Run, Sizes, run_scenario

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


@dataclass
class Recovery:
    """Seconds from the fault until ingest answered 202 again for every swarm, and until
    every client held everything accepted up to that moment."""

    ingest_back: float = 0.0
    clients_current: float = 0.0

    def note(self) -> str:
        return (f"ingest back after {self.ingest_back:.1f} s, every client current after "
                f"{self.clients_current:.1f} s")


@pytest.fixture(scope="module")
def sentinel_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    workdir = tmp_path_factory.mktemp("failover")
    ports = cluster_ports()
    ports.redis, ports.sentinel = free_port_run(3), free_port_run(3)
    cluster = new_cluster(workdir / "cluster", 2, ports=ports, redis="sentinel",
                          sentinel_timing=TEST_TIMING,
                          node_env={"SECRET_KEY": secrets.token_hex(32),
                                    "INGEST_MIN_REPLICAS": "1"})
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()


def measure(run: Run, fault_at: float, recovery: Recovery) -> None:
    """Wait until ingest is back for every swarm, then until every client has caught up."""
    before = run.publisher.accepted()
    step = 2 * run.sizes.batch  # a batch in flight at the fault does not count
    wait_for(lambda: all(run.publisher.accepted().get(s, 0) > n + step
                         for s, n in before.items()),
             120, interval=0.05, message="ingest answering 202 again")
    recovery.ingest_back = time.time() - fault_at
    mark = run.publisher.accepted()

    def behind() -> list[dict[str, object]]:
        return [{k: c[k] for k in ("id", "swarm", "max", "connected", "nodes")}
                for c in run.pool.report() if c["max"] < mark.get(c["swarm"], 0)]

    try:
        wait_for(lambda: not behind(), 120, interval=0.2,
                 message="every client holding what was accepted")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; accepted {mark}; behind: {behind()[:5]}") from None
    recovery.clients_current = time.time() - fault_at


def scenario(cluster: LocalCluster, name: str, fault_of: type[Fault]) -> tuple[Result, Fault]:
    sizes = Sizes.from_env()
    fault = fault_of(cluster)
    result = run_scenario(name, cluster, sizes, cluster.dir, fault)
    result.notes.append(fault.recovery.note())
    RESULTS.append(result)
    print("\n" + "  ".join(f"{k}: {v}" for k, v in result.row().items()), fault.recovery.note())
    return result, fault


class Fault:
    def __init__(self, cluster: LocalCluster):
        self.cluster = cluster
        self.recovery = Recovery()
        self.old_primary = cluster.topology.primary_port()
        self.new_primary = 0

    def __call__(self, run: Run) -> None:
        raise NotImplementedError


class KillPrimary(Fault):
    """SIGKILL of the primary; once Sentinel promoted a replica and the stream is current
    everywhere, the killed server starts again and rejoins as a replica."""

    def __call__(self, run: Run) -> None:
        topology = self.cluster.topology
        name = topology.server_name(topology.server_index(self.old_primary))
        fault_at = time.time()
        self.cluster.kill_redis_server(name)
        measure(run, fault_at, self.recovery)
        self.new_primary = topology.primary_port()
        self.cluster.restart_redis_server(name)
        wait_for(lambda: self.cluster.redis_roles()[name] == "replica", 60, interval=0.2,
                 message=f"{name} back as a replica")


class SwitchoverDuringRollingRestart(Fault):
    """A rolling restart of the nodes; after the first node is back, a switchover
    (`swarmdash cluster redis-failover`: writes paused, SENTINEL FAILOVER). Recovery is
    counted from the switchover, measured while the restart goes on."""

    def __call__(self, run: Run) -> None:
        measuring: list[threading.Thread] = []
        failed: list[BaseException] = []

        def watch(at: float) -> None:
            try:
                measure(run, at, self.recovery)
            except BaseException as exc:  # re-raised in the test's thread
                failed.append(exc)

        def step(node: str) -> None:
            if not measuring:
                thread = threading.Thread(target=watch, args=(time.time(),), daemon=True)
                measuring.append(thread)
                thread.start()
                self.new_primary = self.cluster.redis_failover()

        self.cluster.rolling_restart(step)
        measuring[0].join(300)
        if failed:
            raise failed[0]


def test_primary_killed(sentinel_cluster: LocalCluster) -> None:
    result, fault = scenario(sentinel_cluster, "primary-kill9", KillPrimary)
    assert fault.new_primary and fault.new_primary != fault.old_primary
    assert result.check() == []
    assert result.tally.duplicates + result.tally.refused_503 + \
        sum(result.tally.refused_other.values()) > 0, "the kill refused nothing: too late?"


def test_switchover_during_rolling_restart(sentinel_cluster: LocalCluster) -> None:
    result, fault = scenario(sentinel_cluster, "switchover-rolling", SwitchoverDuringRollingRestart)
    assert fault.new_primary and fault.new_primary != fault.old_primary
    assert result.check() == []
    assert len(result.affected()) == len(result.clients), "every node restarted"
