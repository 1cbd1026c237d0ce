"""The cheap diagnosis commands of the runbooks, run as printed, against a healthy cluster.

websocket-connection-fails, fallback-mode-activating, frequent-disconnections, high-latency,
relay-lag-high, emit-latency-high, slow-consumers, connections-near-limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
import requests

from tests.helpers import metric_value, wait_for
from tests.integration.test_cluster import log_event, post
from tests.local_cluster import client_from

from .conftest import TOKEN_HEADER, Drill, servers_state, wait_healthy

pytestmark = pytest.mark.integration


def relay_at(url: str, position: str) -> Callable[[], bool]:
    return lambda: bool(requests.get(f"{url}/health", timeout=5)
                        .json()["relay"]["position"] == position)


def test_websocket_connection_fails_diagnosis(drill: Drill) -> None:
    wait_healthy(drill)
    health = json.loads(drill.sh("curl -s http://127.0.0.1:8050/health").stdout)
    assert health["status"] == "ok" and health["redis"] == "ok", health
    # The Engine.IO handshake through HAProxy: a session id and the offered upgrade.
    hs = drill.sh('curl -s "http://127.0.0.1:8050/socket.io/?EIO=4&transport=polling"').stdout
    assert hs.startswith('0{"sid":"') and '"upgrades":["websocket"]' in hs, hs
    # The websocket upgrade through HAProxy: 101 Switching Protocols.
    ws = drill.sh(
        "curl -s -o /dev/null -w '%{http_code}\\n' --max-time 2 --http1.1 "
        "-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' "
        "-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "
        "'http://127.0.0.1:8050/socket.io/?EIO=4&transport=websocket'", check=False)
    assert ws.stdout.strip() == "101", (ws.returncode, ws.stdout, ws.stderr)
    # The same handshake straight to one node, bypassing the proxy.
    direct = drill.sh('curl -s "http://127.0.1.1:8050/socket.io/?EIO=4&transport=polling"')
    assert direct.stdout.startswith('0{"sid":"'), direct.stdout
    # A whole Socket.IO connect by hand: which node this address lands on.
    landed = drill.sh(
        'sid=$(curl -s "http://127.0.0.1:8050/socket.io/?EIO=4&transport=polling" '
        "| sed -E 's/.*\"sid\":\"([^\"]+)\".*/\\1/')\n"
        'curl -s -X POST -d 40 "http://127.0.0.1:8050/socket.io/?EIO=4&transport=polling&sid=$sid"'
        "; echo\n"
        'curl -s "http://127.0.0.1:8050/socket.io/?EIO=4&transport=polling&sid=$sid"').stdout
    assert re.search(r'"connection_established",\{"sid":"[^"]+","node":"node\d+"', landed), \
        landed
    config = json.loads(drill.sh("curl -s http://127.0.0.1:8050/api/v1/config").stdout)
    assert config["transports"] == ["polling", "websocket"]
    # Proxy side: every node slot UP in both backends, and the runtime API answers.
    csv = drill.sh("curl -s 'http://127.0.0.1:8404/stats;csv' | grep -E '^(socketio|nodes),node'"
                   " | cut -d, -f1,2,18,74").stdout
    assert sum(line.split(",")[2].startswith("UP") for line in csv.splitlines()) == 6, csv
    state = drill.sh('echo "show servers state socketio" '
                     "| socat stdio .swarmdash-cluster/haproxy.sock").stdout
    assert sorted(servers_state(state).values()).count("2") == 3, state
    status = drill.sh("swarmdash cluster --dir .swarmdash-cluster status").stdout
    rows = [r for r in status.splitlines() if re.match(r"node\d+ ", r)]
    assert len(rows) == 3 and all("running" in r and "UP" in r and "live" in r for r in rows), \
        status
    assert "haproxy=running" in status and "redis=running" in status
    assert drill.sh("grep -c . .swarmdash-cluster/logs/haproxy.log || true").returncode == 0
    # The other rows of the runbook's table: TLS, origin check, a session on the wrong node.
    tls = drill.sh("curl -s --cacert .swarmdash-cluster/certs/swarmdash.pem "
                   "https://127.0.0.1:8443/health")
    assert json.loads(tls.stdout)["status"] == "ok"
    origin = drill.sh("curl -s -H 'Origin: https://dash.example.com' "
                      '"http://127.0.0.1:8050/socket.io/?EIO=4&transport=polling"').stdout
    assert origin == '"Not an accepted origin."', origin
    stale = drill.sh('curl -s "http://127.0.0.1:8050/socket.io/?EIO=4&transport=polling'
                     '&sid=nonexistent"').stdout
    assert stale == '"Invalid session nonexistent"', stale


def test_stats_csv_fields_named_in_the_runbooks(drill: Drill) -> None:
    header = drill.sh("curl -s 'http://127.0.0.1:8404/stats;csv' | sed -n 1p").stdout
    names = header.lstrip("# ").strip().split(",")
    fields = {n: names[n - 1] for n in (1, 2, 5, 7, 18, 22, 23, 24, 59, 60, 61, 74)}
    assert fields == {1: "pxname", 2: "svname", 5: "scur", 7: "slim", 18: "status",
                      22: "chkfail", 23: "chkdown", 24: "lastchg", 59: "qtime", 60: "ctime",
                      61: "rtime", 74: "addr"}, fields
    limits = drill.sh("curl -s 'http://127.0.0.1:8404/stats;csv' | cut -d, -f1,2,5,7 "
                      "| grep -E '^(public|plain|socketio),'").stdout
    assert "plain,FRONTEND," in limits and "socketio,BACKEND," in limits, limits
    flaps = drill.sh("curl -s 'http://127.0.0.1:8404/stats;csv' | grep -E '^socketio,node' "
                     "| cut -d, -f2,18,22,23,24").stdout
    # status is UP, or "UP 1/3" while a check has just failed (a node slowed down by load)
    assert sum(line.split(",")[1].startswith("UP") for line in flaps.splitlines()) == 3, flaps
    times = drill.sh("curl -s 'http://127.0.0.1:8404/stats;csv' | grep -E '^socketio,node' "
                     "| cut -d, -f2,5,18,59,60,61").stdout
    assert sum(line.split(",")[2].startswith("UP") for line in times.splitlines()) == 3, times


def test_fallback_mode_and_frequent_disconnections_diagnosis(drill: Drill) -> None:
    before = drill.metric_sum("swarmdash_fallback_polls_total")
    out = drill.sh("curl -s -H \"Authorization: Bearer $SWARMDASH_TOKEN\" "
                   "-H 'X-Swarmdash-Mode: fallback' "
                   "'http://127.0.0.1:8050/api/v1/events?swarm=alpha&limit=10'").stdout
    body = json.loads(out)
    assert "events" in body and body["cursor"], body
    wait_for(lambda: drill.metric_sum("swarmdash_fallback_polls_total") == before + 1, 5,
             message="the fallback poll counted")
    # What the page is told: when it falls back, and the Engine.IO heartbeat.
    config = json.loads(drill.sh("curl -s http://127.0.0.1:8050/api/v1/config").stdout)
    assert config["fallback_threshold"] == 5 and config["max_reconnect_attempts"] == 10
    assert (config["ping_interval"], config["ping_timeout"]) == (25, 60)
    timeouts = drill.sh("grep -E 'timeout (client|server|tunnel) ' haproxy/haproxy.cfg").stdout
    assert "timeout tunnel 1h" in timeouts and "timeout client 90s" in timeouts
    grep = drill.sh("grep -hE 'disconnecting slow consumer|heartbeat failed|relay lost' "
                    ".swarmdash-cluster/logs/node*.log", check=False)
    assert grep.returncode in (0, 1), grep.stderr  # 1: nothing found, as on a healthy cluster


def test_latency_lag_slow_consumer_and_connection_metrics(drill: Drill) -> None:
    viewer = client_from(drill.url, "127.0.4.7").connect()
    try:
        assert viewer.subscribe(swarm="diag", channels=["log"])["ok"]
        node = viewer.events("connection_established")[0][1]["node"]
        node_url = drill.node_urls()[node]
        number = list(drill.node_urls()).index(node) + 1
        ids = post(drill.url, [log_event("diag", i) for i in range(5)]).json()["ids"]
        wait_for(lambda: viewer.delivered_ids() == ids, 10, message="the events on the viewer")
        # Each relay has read up to the stream's last id (the relay-lag-high check).
        xinfo = drill.sh("redis-cli -p 6390 XINFO STREAM swarmdash:events").stdout.split("\n")
        last = xinfo[xinfo.index("last-generated-id") + 1]
        assert last == ids[-1], xinfo
        for url in drill.node_urls().values():
            wait_for(relay_at(url, last), 5, message=f"relay of {url} at {last}")
        positions = drill.sh("for n in 1 2 3; do curl -s http://127.0.1.$n:8050/health"
                             " | grep -o '\"position\":\"[^\"]*\"'; done").stdout.split()
        assert positions == [f'"position":"{last}"'] * 3, positions
        metrics = drill.sh(
            f"curl -s http://127.0.1.{number}:8050/metrics | grep -E '^swarmdash_("
            "relay_lag_seconds|connected_clients|client_limit|slow_consumer_drops_total|"
            "cluster_nodes|emit_latency_seconds_count|redis_errors_total)'").stdout
        samples = dict(line.rsplit(" ", 1) for line in metrics.splitlines())
        assert float(samples["swarmdash_connected_clients"]) >= 1
        assert float(samples["swarmdash_client_limit"]) == 15000
        assert float(samples["swarmdash_slow_consumer_drops_total"]) == 0
        assert float(samples["swarmdash_cluster_nodes"]) == 3
        assert float(samples["swarmdash_relay_lag_seconds"]) < 5
        assert float(samples['swarmdash_emit_latency_seconds_count{event="log_update_batch"}']) > 0
        # The p99 the emit-latency alert looks at, from the histogram buckets by hand.
        buckets = drill.sh(
            f"curl -s http://127.0.1.{number}:8050/metrics "
            "| grep 'swarmdash_emit_latency_seconds_bucket{event=\"log_update_batch\"'").stdout
        assert 'le="+Inf"' in buckets
        assert metric_value(node_url, "swarmdash_connected_clients") >= 1

        def per_swarm() -> dict[str, int]:
            cluster = json.loads(drill.sh(
                f"curl -s {TOKEN_HEADER} http://127.0.0.1:8050/api/v1/cluster").stdout)
            counts: dict[str, int] = cluster["totals"]["clients_per_swarm"]
            return counts

        # the registry learns it with the node's next heartbeat (HEARTBEAT_INTERVAL)
        wait_for(lambda: per_swarm().get("diag") == 1, 10,
                 message="the subscription in /api/v1/cluster's totals")
    finally:
        viewer.close()


def test_redis_and_relay_commands(drill: Drill) -> None:
    assert drill.sh("redis-cli -p 6390 ping").stdout.strip() == "PONG"
    persistence = drill.sh("redis-cli -p 6390 INFO persistence "
                           "| grep -E '^(loading|aof_enabled|aof_last_write_status)'").stdout
    assert "aof_enabled:1" in persistence and "loading:0" in persistence, persistence
    assert "used_memory_human" in drill.sh(
        "redis-cli -p 6390 INFO memory | grep -E '^(used_memory_human|maxmemory_human)'").stdout
    assert "role:master" in drill.sh("redis-cli -p 6390 INFO replication | grep '^role'").stdout
    drill.sh("redis-cli -p 6390 SLOWLOG GET 10")
    head = drill.sh("redis-cli -p 6390 XINFO STREAM swarmdash:events "
                    "| grep -A1 last-generated-id").stdout.split()
    assert head[0] == "last-generated-id" and re.fullmatch(r"\d+-\d+", head[1]), head
    codes = drill.sh("for n in 1 2 3; do curl -s -o /dev/null -w '%{http_code} ' "
                     "http://127.0.1.$n:8050/health; done; echo").stdout.split()
    assert codes == ["200"] * 3, codes
    errors = drill.sh("curl -s http://127.0.1.1:8050/metrics "
                      "| grep '^swarmdash_redis_errors_total'", check=False)
    assert errors.returncode in (0, 1)  # no sample until the first error
    pids = drill.sh("swarmdash cluster --dir .swarmdash-cluster status --json "
                    "| grep -E '\"(node|pid)\"'").stdout
    pid = re.findall(r'"pid": (\d+)', pids)[0]
    worker = drill.sh(f"ps -o pid,pcpu,rss,args --ppid {pid}").stdout
    assert "gunicorn" in worker or "swarmdash" in worker, worker
    for metric in ("swarmdash_fallback_polls_total", "swarmdash_relay_lag_seconds",
                   "swarmdash_connected_clients"):
        lines = drill.sh(f"for n in 1 2 3; do curl -s http://127.0.1.$n:8050/metrics "
                         f"| grep -E '^{metric}'; done").stdout.splitlines()
        assert len(lines) == 3, (metric, lines)
    masked = drill.sh("SWARMDASH_ENV_FILE=.swarmdash-cluster/node.env swarmdash settings "
                      "| grep '^SECRET_KEY='").stdout.strip()
    assert masked == "SECRET_KEY=****"
