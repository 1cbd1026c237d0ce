"""nginx in front of SwarmDash: both sites pass `nginx -t`, and a real nginx carries
Socket.IO to real nodes: sessions stay on one node through the polling -> websocket upgrade
(`hash $remote_addr consistent`), clients from different addresses spread over the nodes,
and the official socket.io-client connects over TLS."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import socketio

from tests.helpers import DashClient, metric_value, raw_get, session_from, wait_for
from tests.integration.test_cluster import Feed, log_event
from tests.integration.test_js_client import run_js_with_a_drop

from .conftest import Certificate, OpsCluster, need, prometheus_paths_served
from .nginx import NGINX_DIR, Nginx, nginx_test, render_nodes, render_site, start_nginx

pytestmark = pytest.mark.integration  # real nginx / Apache / Prometheus and nodes

SITES = ("swarmdash-single.conf", "swarmdash-cluster.conf")


@pytest.fixture(scope="module")
def nginx_bin() -> str:
    return need("nginx", "nginx-light")


@pytest.fixture(scope="module")
def cluster_proxy(nginx_bin: str, ops_cluster: OpsCluster, certificate: Certificate,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    server = start_nginx(nginx_bin, "swarmdash-cluster.conf",
                         tmp_path_factory.mktemp("nginx-cluster"), certificate,
                         [f"127.0.0.1:{n.port}" for n in ops_cluster.nodes])
    try:
        yield server
    finally:
        server.stop()


def tls_client(url: str, cert: Certificate) -> DashClient:
    """A python-socketio client that verifies the proxy's certificate (polling and websocket)."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE would replace the CA below
    session.verify = str(cert.cert)
    return DashClient(url, sio=socketio.Client(reconnection=False, http_session=session))


def polling_session_node(session: requests.Session, base: str, cert: Certificate) -> str:
    """Open a Socket.IO session by long-polling alone (handshake, connect, polls, close) and
    return the node that served it. A request reaching another node would get HTTP 400
    "Invalid session"."""
    url, ca = f"{base}/socket.io/", str(cert.cert)  # per request: REQUESTS_CA_BUNDLE wins
    r = session.get(url, params={"EIO": "4", "transport": "polling"}, timeout=10, verify=ca)
    assert r.status_code == 200 and r.text.startswith("0"), r.text
    query = {"EIO": "4", "transport": "polling", "sid": json.loads(r.text[1:])["sid"]}
    r = session.post(url, params=query, data="40", timeout=10, verify=ca)
    assert r.status_code == 200, f"connect packet: {r.status_code} {r.text}"
    try:
        for _ in range(5):  # each poll returns as soon as a packet is queued
            r = session.get(url, params=query, timeout=30, verify=ca)
            assert r.status_code == 200, f"poll: {r.status_code} {r.text}"
            for packet in r.text.split("\x1e"):
                if packet.startswith("42"):
                    name, data = json.loads(packet[2:])
                    if name == "connection_established":
                        return str(data["node"])
        raise AssertionError("no connection_established event")
    finally:
        session.post(url, params=query, data="1", timeout=10, verify=ca)  # Engine.IO close


# --- configuration ---------------------------------------------------------------------

def test_render_sh_writes_the_node_list_from_one_variable() -> None:
    text = render_nodes(["10.0.0.5:8050", "node-b.internal:8051", "[::1]:8052"])
    servers = re.findall(r"^server (\S+) max_fails=\d+ fail_timeout=\w+;$", text, re.M)
    assert servers == ["10.0.0.5:8050", "node-b.internal:8051", "[::1]:8052"]


def test_render_sh_writes_apaches_balancer_members_from_the_same_variable() -> None:
    text = render_nodes(["10.0.0.5:8050", "node-b.internal:8051"], "apache")
    members = re.findall(r'^BalancerMember "http://(\S+)" route=(node\d+) upgrade=websocket',
                         text, re.M)
    assert members == [("10.0.0.5:8050", "node1"), ("node-b.internal:8051", "node2")]
    bad = subprocess.run(["sh", str(NGINX_DIR / "render.sh"), "caddy"], capture_output=True,
                         text=True, env={**os.environ, "SWARMDASH_NODES": "a:1"}, timeout=10)
    assert bad.returncode == 2 and "nginx or apache" in bad.stderr


@pytest.mark.parametrize("nodes", ["", "10.0.0.5", "10.0.0.5:http", "10.0.0.5:99999",
                                   "a;b:80", ":8050"])
def test_render_sh_refuses_a_bad_node_list(nodes: str) -> None:
    result = subprocess.run(["sh", str(NGINX_DIR / "render.sh")], capture_output=True,
                            text=True, timeout=10, env={**os.environ, "SWARMDASH_NODES": nodes})
    assert result.returncode != 0 and "render.sh" in result.stderr
    assert "server" not in result.stdout


def test_cluster_site_hashes_the_whole_address_never_ip_hash() -> None:
    text = (NGINX_DIR / "swarmdash-cluster.conf").read_text()
    directives = [line.split("#")[0].strip() for line in text.splitlines()]
    assert "hash $remote_addr consistent;" in directives
    assert not any(d.startswith("ip_hash") for d in directives)


@pytest.mark.parametrize("name", SITES)
def test_site_has_upgrade_headers_and_timeouts_beyond_ping_interval_plus_timeout(
        name: str) -> None:
    from swarmdash.settings import Settings

    text = (NGINX_DIR / name).read_text()
    block = text[text.index("location /socket.io/ {"):]
    block = block[:block.index("}")]
    assert "proxy_set_header Upgrade $http_upgrade;" in block
    # nginx drops every inherited proxy_set_header in a location that sets its own: without
    # Host (with its port) the node refuses the websocket's Origin (HTTP 400).
    assert "proxy_set_header Host $http_host;" in block
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in block
    assert "proxy_set_header Connection $swarmdash_connection;" in block
    assert "map $http_upgrade $swarmdash_connection" in text
    s = Settings()
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        [seconds] = re.findall(rf"{directive} (\d+)s;", block)
        assert s.websocket_ping_interval + s.websocket_ping_timeout < int(seconds) <= 3600


@pytest.mark.parametrize("name", SITES)
def test_nginx_t_accepts_the_site(name: str, nginx_bin: str, certificate: Certificate,
                                  tmp_path: Path) -> None:
    conf = render_site(name, tmp_path, certificate, 18080, 18443, ["127.0.0.1:18051"])
    result = nginx_test(nginx_bin, conf)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# --- live: consistent hash in front of three nodes -----------------------------------------

def test_plain_http_is_redirected_to_https(cluster_proxy: Nginx) -> None:
    r = requests.get(f"http://127.0.0.1:{cluster_proxy.http}/api/v1/config",
                     allow_redirects=False, timeout=5)
    assert r.status_code == 301
    assert r.headers["Location"].startswith("https://")


def test_sessions_stay_on_one_node_and_addresses_spread_over_the_nodes(
        cluster_proxy: Nginx, ops_cluster: OpsCluster, certificate: Certificate) -> None:
    """ip_hash would send every 127.0.0.x to one node; the consistent hash of the whole
    address spreads them, and each address keeps its node from one session to the next."""
    placed: dict[str, str] = {}
    for i in range(2, 26):
        source = f"127.0.0.{i}"
        with session_from(source) as session:
            placed[source] = polling_session_node(session, cluster_proxy.url, certificate)
    assert set(placed.values()) <= {n.name for n in ops_cluster.nodes}
    assert len(set(placed.values())) >= 2, f"every address landed on one node: {placed}"
    for source in list(placed)[:6]:
        with session_from(source) as session:
            assert polling_session_node(session, cluster_proxy.url, certificate) == placed[source]


def test_python_client_upgrades_to_websocket_and_gets_an_event_posted_to_another_node(
        cluster_proxy: Nginx, ops_cluster: OpsCluster, certificate: Certificate) -> None:
    client = tls_client(cluster_proxy.url, certificate).connect()
    try:
        wait_for(lambda: client.sio.transport() == "websocket", 10,
                 message="the polling -> websocket upgrade through nginx")
        [(_, hello)] = wait_for(lambda: client.events("connection_established"), 10,
                                message="connection_established")
        ack = client.subscribe(swarm="nginx-fanout", channels=["log"])
        assert ack["ok"], ack
        other = next(n for n in ops_cluster.nodes if n.name != hello["node"])
        r = requests.post(f"{other.url}/api/v1/events", json=[log_event("nginx-fanout", 1)],
                          timeout=5)
        assert r.status_code == 202, r.text
        [event_id] = r.json()["ids"]
        wait_for(lambda: event_id in client.delivered_ids(), 10,
                 message=f"the event posted to {other.name} through nginx")
        assert client.sio.transport() == "websocket"
    finally:
        client.close()


def test_official_js_client_over_tls_receives_batches_and_resumes(
        cluster_proxy: Nginx, ops_cluster: OpsCluster, certificate: Certificate) -> None:
    """socket.io-client under Node.js, verifying nginx's certificate; dropped once mid-stream,
    it reconnects through nginx to its node and resumes from its cursor."""
    swarm = "nginx-js"
    urls = [n.url for n in ops_cluster.nodes]

    def subscribed() -> float:
        return sum(metric_value(u, 'swarmdash_subscribe_total{outcome="ok"}') for u in urls)

    before = subscribed()
    run_js_with_a_drop(cluster_proxy.url, swarm, Feed(urls, swarm, batches=10),
                       lambda: subscribed() > before, 20, 6,
                       env={"NODE_EXTRA_CA_CERTS": str(certificate.cert)})


# --- live: the single-node site --------------------------------------------------------------

def test_single_node_site_carries_polling_websocket_and_events(
        nginx_bin: str, ops_cluster: OpsCluster, certificate: Certificate,
        tmp_path: Path) -> None:
    node = ops_cluster.nodes[0]
    server = start_nginx(nginx_bin, "swarmdash-single.conf", tmp_path, certificate,
                         [f"127.0.0.1:{node.port}"])
    client = tls_client(server.url, certificate)
    try:
        client.connect()
        wait_for(lambda: client.sio.transport() == "websocket", 10, message="websocket")
        assert client.subscribe(swarm="nginx-single", channels=["log"])["ok"]
        r = requests.post(f"{ops_cluster.nodes[1].url}/api/v1/events",
                          json=[log_event("nginx-single", 1)], timeout=5)
        [event_id] = r.json()["ids"]
        wait_for(lambda: event_id in client.delivered_ids(), 10, message="the event")
        assert requests.get(f"{server.url}/metrics", verify=str(certificate.cert),
                            timeout=5).status_code == 404, "/metrics stays internal"
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("name", SITES)
def test_prometheus_paths_are_hidden_however_spelled(name: str, nginx_bin: str,
                                                     ops_cluster: OpsCluster,
                                                     certificate: Certificate,
                                                     tmp_path: Path) -> None:
    """The audit: the sites had no rule for /api/v1/cluster/targets at all."""
    nodes = [f"127.0.0.1:{n.port}" for n in ops_cluster.nodes]
    server = start_nginx(nginx_bin, name, tmp_path, certificate,
                         nodes if name == "swarmdash-cluster.conf" else nodes[:1])
    try:
        assert prometheus_paths_served(server.https, certificate) == {}
        assert raw_get(server.https, "/api/v1/config?x=%2F", ca=certificate.cert)[0] == 200
    finally:
        server.stop()
