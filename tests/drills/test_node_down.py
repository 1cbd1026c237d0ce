"""node-down.md: a crashed node is seen dead by `status`, DOWN in HAProxy, gone from the
registry after HEARTBEAT_TTL; `restart-node` brings it back."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.helpers import metric_value, wait_for
from tests.local_cluster import NODE_ENV

from .conftest import TOKEN_HEADER, Drill, servers_state, wait_healthy

pytestmark = pytest.mark.integration


def test_node_down_diagnosis_and_restart(drill: Drill) -> None:
    wait_healthy(drill)
    node = drill.cluster().running_nodes()[1]
    victim, host = node.name, node.host
    killed = time.monotonic()
    assert f"{victim} killed" in drill.cli("kill-node", victim).stdout

    def status_row() -> str:
        out = drill.sh("swarmdash cluster --dir .swarmdash-cluster status").stdout
        row = re.search(rf"^{victim} .*$", out, re.M)
        return row.group(0) if row else ""

    row = wait_for(lambda: (lambda r: r if re.search(r"\bdead\s+DOWN\b", r) else "")(
        status_row()), 15, interval=0.2, message=f"{victim} dead and DOWN in `cluster status`")
    down_after = time.monotonic() - killed
    state = drill.sh('echo "show servers state socketio" '
                     "| socat stdio .swarmdash-cluster/haproxy.sock").stdout
    assert servers_state(state)[host] == "0", state
    health = drill.sh(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 2 "
                      f"http://127.0.1.{host.rsplit('.', 1)[1]}:8050/health", check=False)
    assert health.stdout == "000", health  # nothing listens
    # Still live in the registry until its heartbeat expires, then gone.
    wait_for(lambda: victim not in drill.live_nodes(), float(NODE_ENV["HEARTBEAT_TTL"]) + 5,
             interval=0.2, message=f"{victim} out of /api/v1/cluster")
    gone_after = time.monotonic() - killed
    cluster = json.loads(drill.sh(f"curl -s {TOKEN_HEADER} http://127.0.0.1:8050/api/v1/cluster").stdout)
    assert cluster["totals"]["nodes"] == 2
    survivor = drill.node_urls()[drill.cluster().running_nodes()[0].name]
    wait_for(lambda: metric_value(survivor, "swarmdash_cluster_nodes") == 2, 5,
             message="swarmdash_cluster_nodes 2 on a survivor")
    assert row.split()[4] in ("live", "-")  # live until the heartbeat expires
    assert status_row().split()[2:5] == ["dead", "DOWN", "-"]  # after it: not in the registry
    # Mitigation: restart it (logs first).
    assert drill.sh(f"tail -n 20 .swarmdash-cluster/logs/{victim}.log").returncode == 0
    started = time.monotonic()
    assert "back in HAProxy" in drill.cli("restart-node", victim).stdout
    back_after = time.monotonic() - started
    wait_healthy(drill)
    print(f"\nkill-node {victim}: DOWN in HAProxy/status after {down_after:.2f} s, out of "
          f"/api/v1/cluster after {gone_after:.2f} s (HEARTBEAT_TTL={NODE_ENV['HEARTBEAT_TTL']}"
          f"); restart-node took {back_after:.2f} s")
