"""HAProxy in front of real nodes, as the cluster runs: stickiness, TLS, health, failover."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from swarmdash.cluster.local import LocalCluster, repo_root
from tests.helpers import PROMETHEUS_PATH_SPELLINGS, DashClient, raw_get, session_from, wait_for
from tests.integration.test_cluster import Feed, assert_exactly_once_in_order, post
from tests.integration.test_js_client import run_js_with_a_drop
from tests.local_cluster import client_from, start_cluster

pytestmark = pytest.mark.integration
SOURCES = [f"127.0.0.{i}" for i in range(10, 22)]


def handshake(session: requests.Session, url: str) -> str:
    """Open an Engine.IO long-polling session by hand; return its sid."""
    r = session.get(f"{url}/socket.io/", params={"EIO": "4", "transport": "polling"}, timeout=5)
    assert r.status_code == 200, r.text
    return str(r.text.split('"sid":"')[1].split('"')[0])


def poll_statuses(session: requests.Session, url: str, sid: str, n: int = 8) -> list[int]:
    """n requests of one long-polling session: a connect packet, then pings answered."""
    params = {"EIO": "4", "transport": "polling", "sid": sid}
    out = [session.post(f"{url}/socket.io/", params=params, data="40", timeout=5).status_code]
    for _ in range(n - 1):
        out.append(session.post(f"{url}/socket.io/", params=params, data="3",
                                timeout=5).status_code)
    return out


@pytest.mark.parametrize("stickiness", ["source", "cookie", "none"])
def test_config_is_valid_in_every_mode(local_cluster: LocalCluster, stickiness: str) -> None:
    env = {**os.environ, **local_cluster.haproxy_environment(),
           "SWARMDASH_STICKINESS": stickiness}
    out = subprocess.run([shutil.which("haproxy") or "/usr/sbin/haproxy", "-c", "-f",
                          str(repo_root() / "haproxy" / "haproxy.cfg")], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "Configuration file is valid" in out.stdout + out.stderr


def test_clients_from_many_addresses_spread_and_keep_their_node(
        local_cluster: LocalCluster) -> None:
    clients = [client_from(local_cluster.http_url, src) for src in SOURCES]
    try:
        for c in clients:
            c.sio.connect(c.url, transports=["polling", "websocket"], wait_timeout=10)
        # Polling first, then the upgrade: it only succeeds if it reaches the same node.
        wait_for(lambda: all(c.sio.transport() == "websocket" for c in clients), 15,
                 message="every client upgraded to websocket")
        nodes = Counter(c.events("connection_established")[0][1]["node"] for c in clients)
        assert len(nodes) >= 2, f"balance source put every address on one node: {nodes}"
        for c in clients:
            assert c.subscribe(swarm="spread", channels=["log"])["ok"]
        origin = local_cluster.node_url(local_cluster.running_nodes()[0])
        ids = post(origin, [{"type": "log", "swarm": "spread", "agent_id": "a",
                             "data": {"level": "info", "message": "hello all"}}]).json()["ids"]
        for c in clients:
            wait_for(lambda c=c: c.delivered_ids() == ids, 10,
                     message=f"the event on a client of {c.events('connection_established')}")
        # The same address always lands on the same node.
        again = client_from(local_cluster.http_url, SOURCES[0]).connect()
        first = clients[0].events("connection_established")[0][1]["node"]
        assert again.events("connection_established")[0][1]["node"] == first
        again.close()
        cluster = requests.get(f"{local_cluster.http_url}/api/v1/cluster", timeout=5).json()
        assert cluster["totals"]["nodes"] == 3
        wait_for(lambda: requests.get(f"{local_cluster.http_url}/api/v1/cluster", timeout=5)
                 .json()["totals"]["clients_per_swarm"].get("spread") == len(clients), 10,
                 message="viewers across nodes in /api/v1/cluster")
    finally:
        for c in clients:
            c.close()


def test_long_polling_needs_stickiness(local_cluster: LocalCluster,
                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    session = session_from(SOURCES[1])
    sid = handshake(session, local_cluster.http_url)
    assert poll_statuses(session, local_cluster.http_url, sid) == [200] * 8

    roundrobin = start_cluster(tmp_path_factory.mktemp("rr"), stickiness="none")
    try:
        session = session_from(SOURCES[1])
        sid = handshake(session, roundrobin.http_url)
        statuses = poll_statuses(session, roundrobin.http_url, sid)
        # The next requests of the session reach nodes that never saw it.
        assert 400 in statuses, statuses
        r = session.post(f"{roundrobin.http_url}/socket.io/",
                         params={"EIO": "4", "transport": "polling", "sid": sid}, data="3",
                         timeout=5)
        if r.status_code == 400:
            assert "Invalid session" in r.text or r.text == "", r.text
    finally:
        roundrobin.down()


def test_cookie_stickiness_follows_the_client_not_its_address(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    cluster = start_cluster(tmp_path_factory.mktemp("cookie"), stickiness="cookie")
    try:
        session = session_from(SOURCES[2])
        sid = handshake(session, cluster.http_url)
        cookie = session.cookies.get("SWARMDASH_NODE")
        assert cookie, "HAProxy did not set the node cookie"
        # The same session from other addresses (a phone changing network, many users
        # behind NAT): the cookie, not the address, picks the node.
        statuses = []
        for src in SOURCES[3:9]:
            other = session_from(src)
            other.cookies.set("SWARMDASH_NODE", cookie)
            statuses += poll_statuses(other, cluster.http_url, sid, n=2)[1:]
        assert statuses == [200] * 6
    finally:
        cluster.down()


def test_http_redirects_to_https_and_tls_serves_the_node(local_cluster: LocalCluster) -> None:
    p = local_cluster.state.ports
    r = requests.get(f"http://127.0.0.1:{p.http}/api/v1/config", allow_redirects=False,
                     timeout=5)
    assert r.status_code == 301
    assert r.headers["Location"].startswith("https://")
    r = requests.get(f"{local_cluster.https_url}/health", verify=str(local_cluster.cert),
                     timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert r.headers.get("Strict-Transport-Security")
    # Prometheus' paths and the nodes' own Redis probe are not served to the outside (they
    # are on the internal frontend).
    for path in ("/metrics", "/api/v1/cluster/targets", "/health/redis"):
        hidden = requests.get(f"{local_cluster.https_url}{path}",
                              verify=str(local_cluster.cert), timeout=5)
        assert hidden.status_code == 404, (path, hidden.status_code)
        assert requests.get(f"{local_cluster.http_url}{path}", timeout=5).status_code == 200


def test_prometheus_paths_are_hidden_from_the_public_however_spelled(
        local_cluster: LocalCluster) -> None:
    """The audit: /%6detrics, //api/v1/cluster/targets and /api/v1/cluster/%74argets were
    answered through the public entrypoint; every spelling is refused (400 for a path not in
    its plain form, 404 for the paths), and Prometheus still reads them on the internal
    frontend."""
    https = local_cluster.state.ports.https
    served = {}
    for path in PROMETHEUS_PATH_SPELLINGS:
        status, body = raw_get(https, path, ca=local_cluster.cert)
        if status not in (400, 404) or b"swarmdash_" in body or b"targets" in body:
            served[path] = (status, body[:80])
    assert served == {}, f"served to the public: {served}"
    plain = local_cluster.state.ports.plain
    assert raw_get(plain, "/metrics")[0] == 200
    assert raw_get(plain, "/api/v1/cluster/targets")[0] == 200
    # a path not in its plain form gets a JSON error saying why; plain paths and escapes in
    # the query pass
    status, body = raw_get(https, "//api/v1/config", ca=local_cluster.cert)
    assert status == 400 and "plain form" in json.loads(body)["error"]
    assert raw_get(https, "/api/v1/config?x=%2F&y=.%2e", ca=local_cluster.cert)[0] == 200


def test_stats_page_and_prometheus_exporter(local_cluster: LocalCluster) -> None:
    metrics = requests.get(f"{local_cluster.stats_url}/metrics", timeout=5).text
    assert 'haproxy_backend_active_servers{proxy="socketio"} 3' in metrics
    assert requests.get(f"{local_cluster.stats_url}/stats", timeout=5).status_code == 200
    # Not on the public entrypoint.
    assert "haproxy_backend" not in requests.get(f"{local_cluster.http_url}/metrics",
                                                 timeout=5).text


def test_official_js_client_through_haproxy_over_tls(local_cluster: LocalCluster) -> None:
    swarm = "js-tls"
    url = local_cluster.https_url
    feed = Feed([local_cluster.http_url], swarm, batches=30)
    before = requests.get(f"{local_cluster.http_url}/api/v1/cluster", timeout=5).json()
    messages = run_js_with_a_drop(
        url, swarm, feed,
        lambda: requests.get(f"{local_cluster.http_url}/api/v1/cluster", timeout=5)
        .json()["totals"]["clients_per_swarm"].get(swarm), 60, 20,
        env={"NODE_EXTRA_CA_CERTS": str(local_cluster.cert)})
    acks = [m["ack"] for m in messages if "ack" in m]
    assert acks[0]["transport"] == "websocket"
    assert before["totals"]["nodes"] == 3


def test_a_killed_node_leaves_the_pool_and_its_clients_resume_elsewhere(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    cluster = start_cluster(tmp_path_factory.mktemp("kill"))
    swarm = "failover"
    clients = [client_from(cluster.http_url, src).connect() for src in SOURCES]
    try:
        for c in clients:
            assert c.subscribe(swarm=swarm, channels=["agent", "log"])["ok"]
        by_node = Counter(c.events("connection_established")[0][1]["node"] for c in clients)
        victim = by_node.most_common(1)[0][0]
        feed = Feed([cluster.http_url], swarm)
        feed.start()
        wait_for(lambda: all(len(c.delivered()) >= 10 for c in clients), 15,
                 message="events on every client")
        killed_at = time.monotonic()
        cluster.kill_node(victim)
        host = cluster.node(victim).host
        wait_for(lambda: host not in cluster.up_hosts("socketio"), 10,
                 message="HAProxy marking the killed node down")
        marked_down = time.monotonic() - killed_at
        orphans = [c for c in clients
                   if c.events("connection_established")[0][1]["node"] == victim]
        wait_for(lambda: not any(c.sio.connected for c in orphans), 30,
                 message="the killed node's clients noticing")
        resumed: list[DashClient] = []
        for old in orphans:  # a dashboard reconnects through the proxy with its cursor
            src = SOURCES[clients.index(old)]
            new = client_from(cluster.http_url, src).connect()
            assert new.events("connection_established")[0][1]["node"] != victim
            ack = new.subscribe(swarm=swarm, channels=["agent", "log"], since=old.cursor)
            assert ack["ok"] and not ack["gap"], ack
            resumed.append(new)
        wait_for(lambda: all(len(c.delivered()) >= 10 for c in resumed), 15,
                 message="live events after the resume")
        feed.stop()
        survivors = [c for c in clients if c not in orphans]
        assert all(c.sio.connected for c in survivors), "a client of a healthy node dropped"
        for c in survivors + resumed:
            wait_for(lambda c=c: set(feed.accepted) <= set(
                c.delivered_ids() + (orphans[resumed.index(c)].delivered_ids()
                                     if c in resumed else [])), 15,
                message="every accepted event")
        for old, new in zip(orphans, resumed, strict=True):
            merged = DashClient(cluster.http_url)
            merged.received = old.received + new.received
            assert_exactly_once_in_order(merged, feed.accepted, swarm)
        for c in survivors:
            assert_exactly_once_in_order(c, feed.accepted, swarm)
        print(f"\nkilled {victim}: HAProxy marked it down after {marked_down:.2f} s; "
              f"{len(orphans)} clients resumed elsewhere, {len(survivors)} never noticed")
        assert marked_down < 5, "inter 500ms fall 3 should take the node out within seconds"
    finally:
        for c in clients:
            c.close()
        cluster.down()


def test_cluster_command_up_status_down(tmp_path: Path) -> None:
    from tests.local_cluster import cluster_ports

    p = cluster_ports()
    workdir = tmp_path / "cli"
    base = [str(Path(sys.executable).parent / "swarmdash"), "cluster", "--dir", str(workdir)]
    up = subprocess.run([*base, "up", "--nodes", "2", "--net", "127.9.9", "--port", str(p.plain),
                         "--https-port", str(p.https), "--http-port", str(p.http),
                         "--stats-port", str(p.stats), "--dns-port", str(p.dns),
                         "--redis-port", str(p.redis), "--node-port", str(p.node),
                         "--env", "GRACEFUL_TIMEOUT=2"],
                        capture_output=True, text=True, timeout=120)
    # the command `up` tells the operator to stop it with, as printed
    stop = re.search(r"stop: (swarmdash cluster down --dir \S+)", up.stdout)
    down_argv = (shlex.split(stop.group(1).replace("swarmdash", base[0], 1)) if stop
                 else [*base, "down"])
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert "node1" in up.stdout and "node2" in up.stdout
        # progress while it starts: each process as it becomes ready
        for step in ("redis-server ready", "node1 starting (pid", "node2 healthy after",
                     "haproxy: every node UP"):
            assert step in up.stderr, up.stderr
        status = subprocess.run([*base, "status"], capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stderr
        rows = [line for line in status.stdout.splitlines()
                if line.startswith("node") and line[4].isdigit()]
        assert len(rows) == 2 and all("running" in r and "UP" in r and "live" in r
                                      for r in rows), status.stdout
        assert re.search(r"\s\d+(s|m \d\ds)\s+\d+$", rows[0]), status.stdout  # uptime, pid
        assert requests.get(f"http://127.0.0.1:{p.plain}/health", timeout=5).ok
        again = subprocess.run([*base, "up"], capture_output=True, text=True, timeout=30)
        assert again.returncode == 1 and "already" in again.stderr
        removed = subprocess.run([*base, "remove-node", "node2"], capture_output=True,
                                 text=True, timeout=60)
        assert removed.returncode == 0, removed.stderr
        assert "waiting for HAProxy" in removed.stderr and "node2 stopping" in removed.stderr
    finally:
        down = subprocess.run(down_argv, capture_output=True, text=True, timeout=60)
        if down.returncode != 0:  # stop what was started even when the printed command fails
            subprocess.run([*base, "down"], capture_output=True, text=True, timeout=60)
    assert stop is not None, up.stdout
    assert down.returncode == 0, down.stderr
    assert "haproxy stopped" in down.stderr and "node1 stopped" in down.stderr, down.stderr
    wait_for(lambda: not _listening(p.plain), 10, message="HAProxy stopped")
    assert not (workdir / "cluster.json").exists()
    status = subprocess.run([*base, "status"], capture_output=True, text=True, timeout=30)
    assert status.returncode == 1 and "cluster up" in status.stderr


def _listening(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/", timeout=1)
    except requests.ConnectionError:
        return False
    return True


def test_a_node_cut_off_from_redis_leaves_the_pool_then_returns(
        local_cluster: LocalCluster) -> None:
    from tests.faults import TcpLink

    link = TcpLink(local_cluster.state.ports.redis)
    node = local_cluster.add_node(env={"REDIS_URL": f"redis://127.0.0.1:{link.port}/0",
                                       "REDIS_TIMEOUT": "0.5"})
    try:
        assert node.host in local_cluster.up_hosts("socketio")
        cut_at = time.monotonic()
        link.cut()
        wait_for(lambda: node.host not in local_cluster.up_hosts("socketio")
                 and node.host not in local_cluster.up_hosts("nodes"), 15,
                 message="HAProxy taking the Redis-less node out")
        out_after = time.monotonic() - cut_at
        health = requests.get(f"{local_cluster.node_url(node)}/health", timeout=5)
        assert health.status_code == 503 and health.json()["redis"] == "unreachable"
        # Nothing reaches it meanwhile: every request through the proxy succeeds.
        for _ in range(20):
            assert requests.get(f"{local_cluster.http_url}/api/v1/snapshot",
                                timeout=5).status_code == 200
        link.restore()
        wait_for(lambda: node.host in local_cluster.up_hosts("socketio"), 20,
                 message="the node back in the pool once Redis answers")
        print(f"\nnode cut off from Redis: out of HAProxy after {out_after:.2f} s")
        assert out_after < 5, "a node that alone lost Redis leaves the pool within 5 s"
    finally:
        local_cluster.remove_node(node.name)
        link.close()
