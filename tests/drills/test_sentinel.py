"""redis-failover.md, redis-replica-lost.md, sentinel-quorum-lost.md,
redis-replication-lag.md: each runbook's commands run verbatim against
`swarmdash cluster up --redis sentinel` (with this cluster's ports) while a feed is
published, and show what the runbook says they show.

Every command below is checked to appear in its runbook word for word.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from swarmdash.cluster.local import LocalCluster
from tests.helpers import metric_value, wait_for
from tests.local_cluster import NODE_ENV, cluster_ports, random_net
from tests.sentinel import free_port_run

from .conftest import BIN, Drill

pytestmark = pytest.mark.integration
RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"

GET_PRIMARY = "redis-cli -p 26390 SENTINEL get-master-addr-by-name swarmdash"
ROLES = "swarmdash cluster --dir .swarmdash-cluster status | grep -oE 'redis[0-9].role=[a-z]+'"
FAILOVER_METRICS = ("curl -s http://127.0.1.1:8050/metrics | grep -E "
                    "'^swarmdash_redis_(primary_changes_total|replicas)'")
MOVED_LOG = "grep -h 'Redis primary moved' .swarmdash-cluster/logs/node*.log | tail -3"
SWITCH_LOG = "grep -h 'switch-master' .swarmdash-cluster/logs/sentinel*.log | tail -3"
REPLICA_FLAGS = ("redis-cli -p 26390 SENTINEL replicas swarmdash | grep -A1 -E '^flags$' | "
                 "grep -vE '^(flags|--)$'")
CKQUORUM = "redis-cli -p 26390 SENTINEL ckquorum swarmdash"
REPLICAS_BY_PORT = ("redis-cli -p 26390 SENTINEL replicas swarmdash | grep -A1 -E "
                    "'^(port|flags)$' | grep -vE '^(port|flags|--)$' | paste - -")
REPLICA_METRICS = "curl -s http://127.0.1.1:8050/metrics | grep -E '^swarmdash_redis_replicas'"
PRIMARY_INFO = ("redis-cli -p $(redis-cli -p 26390 SENTINEL get-master-addr-by-name swarmdash "
                "| tail -1) INFO replication | grep -E '^(connected_slaves|slave[0-9])'")
SENTINEL_PINGS = ('for p in 26390 26391 26392; do echo "$p $(redis-cli -p $p ping 2>&1)"; '
                  'done')
SENTINEL_METRICS = ("curl -s http://127.0.1.1:8050/metrics | grep -E "
                    "'^swarmdash_redis_(sentinel_quorum|sentinels_)'")
LAG_INFO = ("redis-cli -p $(redis-cli -p 26390 SENTINEL get-master-addr-by-name swarmdash | "
            "tail -1) INFO replication | grep -E '^(master_repl_offset|slave[0-9])'")
LAG_METRICS = ("curl -s http://127.0.1.1:8050/metrics | grep -E "
               "'^swarmdash_(redis_replication_lag|replica_wait_short)'")


def in_runbook(runbook: str, *commands: str) -> None:
    text = (RUNBOOKS / runbook).read_text()
    for command in commands:
        assert command in text, f"{runbook} no longer says {command!r}"


class SentinelDrill(Drill):
    """A drill whose Redis is three servers (6390-6392) and three sentinels (26390-26392)."""

    def translate(self, command: str) -> str:
        p = self.ports
        command = re.sub(r"\b2639([0-2])\b", lambda m: str(p.sentinel + int(m[1])), command)
        command = re.sub(r"-p 639([0-2])\b", lambda m: f"-p {p.redis + int(m[1])}", command)
        return super().translate(command)

    def metric(self, sample: str) -> float:
        return metric_value(self.node_urls()["node1"], sample)

    def primary_port(self) -> int:
        return int(self.sh(GET_PRIMARY).stdout.split()[-1])

    def server_of(self, port: int) -> str:
        return f"redis{port - self.ports.redis + 1}"

    def ingest_back(self, seq: int, what: str, timeout: float = 30) -> None:
        """Wait until ingest through HAProxy answers 202; on failure say what the nodes and
        HAProxy were doing."""
        try:
            wait_for(lambda: self.post(seq) == 202, timeout, interval=0.2, message=what)
        except AssertionError as exc:
            cluster = self.cluster()
            tails = "\n".join(f"--- {n}\n{cluster.tail(n, 15)}"
                              for n in ("node1", "node2", "haproxy"))
            raise AssertionError(f"{exc}; HAProxy UP: {cluster.up_hosts('nodes')}\n{tails}") \
                from None

    def post(self, seq: int) -> int:
        event = {"type": "log", "swarm": "drill", "agent_id": "a1",
                 "data": {"level": "info", "message": f"event {seq}"}}
        return requests.post(f"{self.url}/api/v1/events", json=[event], timeout=10).status_code


@pytest.fixture(scope="module")
def sdrill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelDrill]:
    ports = cluster_ports()
    ports.redis, ports.sentinel = free_port_run(3), free_port_run(3)
    d = SentinelDrill(tmp_path_factory.mktemp("sdrill") / "cluster", ports,
                      random_net())
    p = d.ports
    env = [a for k, v in {**NODE_ENV, "INGEST_MIN_REPLICAS": "1"}.items()
           for a in ("--env", f"{k}={v}")]
    args = ["up", "--redis", "sentinel", "--nodes", "2", "--net", d.net, "--port",
            str(p.plain), "--https-port", str(p.https), "--http-port", str(p.http),
            "--stats-port", str(p.stats), "--dns-port", str(p.dns), "--redis-port",
            str(p.redis), "--sentinel-port", str(p.sentinel), "--node-port", str(p.node), *env]
    try:
        up = subprocess.run([str(BIN / "swarmdash"), "cluster", "--dir", str(d.dir), *args],
                            capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stderr + up.stdout
        yield d
    finally:
        subprocess.run([str(BIN / "swarmdash"), "cluster", "--dir", str(d.dir), "down"],
                       capture_output=True, text=True, timeout=120)
        if (d.dir / "cluster.json").exists():
            LocalCluster.load(d.dir).down()


def test_primary_killed_failover_runbook(sdrill: SentinelDrill) -> None:
    in_runbook("redis-failover.md", GET_PRIMARY, ROLES, FAILOVER_METRICS, MOVED_LOG,
               SWITCH_LOG, REPLICA_FLAGS, CKQUORUM,
               "swarmdash cluster --dir .swarmdash-cluster restart-redis-server redis1",
               "swarmdash cluster --dir .swarmdash-cluster redis-failover")
    assert sdrill.post(1) == 202
    old = sdrill.primary_port()
    name = sdrill.server_of(old)
    sdrill.cli("kill-redis-server", name)
    wait_for(lambda: sdrill.primary_port() != old, 30, interval=0.2,
             message="Sentinel to promote a replica")
    sdrill.ingest_back(2, "ingest back")
    roles = sdrill.sh(ROLES).stdout
    assert f"{name}.role=down" in roles and roles.count("role=primary") == 1
    wait_for(lambda: "swarmdash_redis_primary_changes_total 1.0" in sdrill.sh(
        FAILOVER_METRICS).stdout, 15, message="the failover counted by the node")
    assert "Redis primary moved" in sdrill.sh(MOVED_LOG).stdout
    assert f"+switch-master swarmdash 127.0.0.1 {old}" in sdrill.sh(SWITCH_LOG).stdout
    # mitigation: the old primary back, as a replica; the runbook's checks are clean
    sdrill.cli("restart-redis-server", name)
    wait_for(lambda: sdrill.sh(REPLICA_FLAGS).stdout.split() == ["slave", "slave"], 30,
             interval=0.3, message="both replicas healthy")
    assert sdrill.sh(CKQUORUM).stdout.startswith("OK")
    # a planned switchover loses nothing and moves the primary again
    current = sdrill.primary_port()
    sdrill.cli("redis-failover", timeout=90)
    assert sdrill.primary_port() != current
    sdrill.ingest_back(3, "ingest after the switchover")


def test_replica_lost_runbook(sdrill: SentinelDrill) -> None:
    in_runbook("redis-replica-lost.md", REPLICAS_BY_PORT, ROLES, REPLICA_METRICS, PRIMARY_INFO,
               "swarmdash cluster --dir .swarmdash-cluster restart-redis-server redis2")
    primary = sdrill.primary_port()
    victim = next(p for p in range(sdrill.ports.redis, sdrill.ports.redis + 3) if p != primary)
    sdrill.cli("kill-redis-server", sdrill.server_of(victim))
    wait_for(lambda: f"{victim}\ts_down,slave" in sdrill.sh(REPLICAS_BY_PORT).stdout, 30,
             interval=0.3, message="the replica flagged s_down")
    wait_for(lambda: sdrill.metric('swarmdash_redis_replicas{state="down"}') == 1, 15,
             message="the node exporting one replica down")
    assert "connected_slaves:1" in sdrill.sh(PRIMARY_INFO).stdout
    assert sdrill.post(10) == 202, "one replica online is enough for INGEST_MIN_REPLICAS=1"
    sdrill.cli("restart-redis-server", sdrill.server_of(victim))
    wait_for(lambda: sdrill.metric('swarmdash_redis_replicas{state="down"}') == 0, 30,
             interval=0.3, message="no replica down")
    assert "connected_slaves:2" in sdrill.sh(PRIMARY_INFO).stdout


def test_sentinel_quorum_lost_runbook(sdrill: SentinelDrill) -> None:
    in_runbook("sentinel-quorum-lost.md", CKQUORUM, SENTINEL_PINGS, SENTINEL_METRICS,
               "swarmdash cluster --dir .swarmdash-cluster restart-redis-server sentinel2")
    for name in ("sentinel2", "sentinel3"):
        sdrill.cli("kill-redis-server", name)
    wait_for(lambda: "NOQUORUM" in sdrill.sh(CKQUORUM, check=False).stdout, 30, interval=0.3,
             message="the remaining sentinel seeing the others down")
    pings = sdrill.sh(SENTINEL_PINGS).stdout
    assert pings.count("PONG") == 1 and pings.count("Could not connect") == 2
    wait_for(lambda: "swarmdash_redis_sentinel_quorum 0.0" in sdrill.sh(SENTINEL_METRICS).stdout,
             15, message="the node exporting the lost quorum")
    assert "swarmdash_redis_sentinels_reachable 1.0" in sdrill.sh(SENTINEL_METRICS).stdout
    assert sdrill.post(20) == 202, "the primary still serves"
    for name in ("sentinel2", "sentinel3"):
        sdrill.cli("restart-redis-server", name)
    wait_for(lambda: sdrill.sh(CKQUORUM, check=False).stdout.startswith("OK"), 30,
             interval=0.3, message="the quorum back")
    wait_for(lambda: "swarmdash_redis_sentinel_quorum 1.0" in sdrill.sh(SENTINEL_METRICS).stdout,
             15, message="the node exporting the quorum back")


def test_replication_lag_runbook(sdrill: SentinelDrill) -> None:
    in_runbook("redis-replication-lag.md", LAG_INFO, LAG_METRICS,
               "swarmdash cluster --dir .swarmdash-cluster restart-redis-server redis3")
    cluster = sdrill.cluster()
    primary = sdrill.primary_port()
    victim = next(p for p in range(sdrill.ports.redis, sdrill.ports.redis + 3) if p != primary)
    name = sdrill.server_of(victim)
    pid = cluster.state.pids[name]
    os.kill(pid, signal.SIGSTOP)  # the fault: a stalled replica (its host overloaded)
    try:
        wait_for(lambda: sdrill.metric("swarmdash_redis_replication_lag_seconds") > 5, 30,
                 interval=0.5, message="the node exporting the lag")
        info = sdrill.sh(LAG_INFO).stdout
        lags = {int(port): int(lag) for port, lag in re.findall(
            r"port=(\d+),state=online,offset=\d+,lag=(\d+)", info)}
        assert lags[victim] > 5, info
        assert "swarmdash_redis_replication_lag_seconds" in sdrill.sh(LAG_METRICS).stdout
    except BaseException:
        os.kill(pid, signal.SIGCONT)
        raise
    sdrill.cli("restart-redis-server", name)  # the mitigation (it stops the stalled process)
    wait_for(lambda: sdrill.metric("swarmdash_redis_replication_lag_seconds") <= 1, 30,
             interval=0.5, message="the lag back to normal")
