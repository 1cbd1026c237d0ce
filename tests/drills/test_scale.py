"""scale-out-in.md: `add-node` joins HAProxy and the registry and takes new clients;
`remove-node` drains a node whose clients move and resume with nothing lost."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter

import pytest

from tests.helpers import wait_for
from tests.integration.test_cluster import Feed, assert_exactly_once_in_order

from .conftest import (
    TOKEN_HEADER,
    Drill,
    Viewer,
    landing_node,
    servers_state,
    through,
    wait_healthy,
)

pytestmark = pytest.mark.integration
#: Fresh client addresses: enough that HAProxy's consistent hash maps some to a new node.
PROBES = [f"127.0.{3 + i // 250}.{1 + i % 250}" for i in range(40)]


def test_scale_out_add_node(drill: Drill) -> None:
    wait_healthy(drill)
    before = {src: landing_node(drill.url, src) for src in PROBES}
    out = drill.cli("add-node").stdout
    name = re.search(r"^(node\d+) up at (\S+), in HAProxy$", out, re.M)
    assert name, out
    node, address = name.group(1), name.group(2)
    # HAProxy: the new slot is UP (stats page and runtime API). add-node returns once it
    # counts as up ("UP 1/2" still counts); full health follows with the next check.
    def slot_up() -> bool:
        csv = drill.sh("curl -s 'http://127.0.0.1:8404/stats;csv' | grep -E '^socketio,node'"
                       " | cut -d, -f2,18,74").stdout
        return any(line.endswith(f",UP,{address}") for line in csv.splitlines())

    wait_for(slot_up, 10, interval=0.2, message=f"{node} UP in the stats CSV")
    state = drill.sh('echo "show servers state socketio" '
                     "| socat stdio .swarmdash-cluster/haproxy.sock").stdout
    assert servers_state(state).get(address.split(":")[0]) == "2", state
    # The registry and the status table list it.
    wait_for(lambda: node in drill.live_nodes(), 10, message=f"{node} in /api/v1/cluster")
    cluster = json.loads(drill.sh(f"curl -s {TOKEN_HEADER} http://127.0.0.1:8050/api/v1/cluster").stdout)
    assert cluster["totals"]["nodes"] == 4
    status = drill.sh("swarmdash cluster --dir .swarmdash-cluster status").stdout
    assert re.search(rf"^{node} .*running\s+UP\s+live", status, re.M), status
    # New clients from fresh addresses land on it; the others keep their node.
    after = {src: landing_node(drill.url, src) for src in PROBES}
    spread = Counter(after.values())
    print(f"\n40 addresses before {dict(Counter(before.values()))}, "
          f"after add-node {dict(spread)}")
    assert spread[node] >= 1, spread
    # Consistent hashing: only addresses that now map to the new node moved.
    moved = {src: (before[src], after[src]) for src in PROBES
             if after[src] not in (before[src], node)}
    assert not moved, moved


def test_scale_in_remove_node_clients_resume(drill: Drill, viewers: list[Viewer]) -> None:
    if len(drill.cluster().running_nodes()) < 4:
        drill.cli("add-node")
    wait_healthy(drill, 4)
    victim = drill.cluster().running_nodes()[-1].name
    landing = {src: landing_node(drill.url, src) for src in PROBES}
    on_victim = [s for s, n in landing.items() if n == victim][:4]
    elsewhere = [s for s, n in landing.items() if n != victim][:4]
    assert on_victim, f"no probe address lands on {victim}: {Counter(landing.values())}"
    swarm = "scale-in"
    for src in on_victim + elsewhere:
        viewer = Viewer(drill.url, src, swarm)
        viewers.append(viewer)
        assert viewer.connect()
    assert {v.node for v in viewers[:len(on_victim)]} == {victim}
    feed = Feed([drill.url], swarm)
    feed.start()
    try:
        remove = through(drill, viewers, lambda: len(feed.accepted), f"remove-node {victim}",
                         "remove-node", victim, timeout=60)
        took = remove.took
    finally:
        feed.stop()
    for v in viewers:
        wait_for(v.has_all(feed.accepted), 15,
                 message=f"every accepted event on {v.source}")
        assert_exactly_once_in_order(v.merged(), feed.accepted, swarm)
        assert v.gaps == 0
    moved = viewers[:len(on_victim)]
    assert all(len(v.sessions) >= 2 and v.node != victim for v in moved)
    assert all(len(v.sessions) == 1 for v in viewers[len(on_victim):]), \
        "a client of a node that stayed was disconnected"
    assert victim not in drill.live_nodes()
    status = drill.sh("swarmdash cluster --dir .swarmdash-cluster status").stdout
    assert not re.search(rf"^{victim} ", status, re.M), status
    wait_healthy(drill, 3)
    resumes = [t for v in moved for t in v.resume_times]
    print(f"\nremove-node {victim}: {took:.2f} s; {len(moved)} clients moved, resumed after "
          f"median {statistics.median(resumes):.2f} s, max {max(resumes):.2f} s; "
          f"{len(feed.accepted)} events, none lost or duplicated")
