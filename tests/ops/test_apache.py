"""Apache in front of SwarmDash: the site passes Apache's configtest, and a real Apache
keeps every request of a Socket.IO session (long-polling and the websocket upgrade) on
one node with its route cookie; the original guide's vhost sent the two different ways."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import socketio

from tests.helpers import DashClient, Process, free_port, raw_get, wait_for
from tests.integration.test_cluster import log_event

from .apache import MODULES, MODULES_DIR, SITE, configtest, render
from .conftest import Certificate, OpsCluster, need, prometheus_paths_served
from .nginx import render_nodes

pytestmark = pytest.mark.integration  # real nginx / Apache / Prometheus and nodes

@pytest.fixture(scope="module")
def apache_bin() -> str:
    binary = need("apache2", "apache2")
    missing = [m for m in MODULES if not (MODULES_DIR / f"mod_{m}.so").exists()]
    if missing:
        pytest.skip(f"Apache modules missing: {missing}")
    return binary


def test_site_passes_configtest(apache_bin: str, certificate: Certificate,
                                tmp_path: Path) -> None:
    conf = render(tmp_path, certificate, 18080, 18443, ["127.0.0.1:18051", "127.0.0.1:18052"])
    result = configtest(apache_bin, conf)
    assert result.returncode == 0, result.stderr
    assert "Syntax OK" in result.stdout + result.stderr


def test_every_socketio_request_goes_through_the_sticky_balancer() -> None:
    directives = [line.split("#")[0].strip() for line in SITE.read_text().splitlines()]
    assert 'ProxyPass "/" "balancer://swarmdash/"' in directives
    assert not any(d.startswith("RewriteRule") for d in directives), \
        "a RewriteRule for the upgrade would bypass the balancer's stickiness"
    assert "Include /etc/apache2/swarmdash-nodes.conf" in directives  # rendered node list
    members = render_nodes(["10.0.0.5:8050", "10.0.0.6:8050"], "apache").splitlines()[1:]
    assert members and all("upgrade=websocket" in d and "route=" in d for d in members)
    assert "ProxySet lbmethod=byrequests stickysession=SWARMDASH_ROUTE" in directives


@pytest.fixture(scope="module")
def apache_proxy(apache_bin: str, ops_cluster: OpsCluster, certificate: Certificate,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    out = tmp_path_factory.mktemp("apache")
    https = free_port()
    conf = render(out, certificate, free_port(), https,
                  [f"127.0.0.1:{n.port}" for n in ops_cluster.nodes])
    checked = configtest(apache_bin, conf)
    assert checked.returncode == 0, checked.stderr
    process = Process("apache", [apache_bin, "-X", "-d", str(out), "-f", str(conf)],
                      out).start()
    url = f"https://127.0.0.1:{https}"
    try:
        wait_for(lambda: not process.alive or requests.get(
            f"{url}/api/v1/config", verify=str(certificate.cert), timeout=2).ok, 15,
            message="Apache to proxy /api/v1/config")
        assert process.alive, f"apache exited:\n{process.tail()}\n" + (
            out / "error.log").read_text(errors="replace")
        yield url
    finally:
        process.stop(10)


def test_clients_keep_their_node_through_the_upgrade_and_spread_over_nodes(
        apache_proxy: str, ops_cluster: OpsCluster, certificate: Certificate) -> None:
    """Clients from one address: the cookie, not the address, keeps each on its node."""
    clients: list[DashClient] = []
    try:
        for _ in range(4):
            session = requests.Session()
            session.trust_env = False
            session.verify = str(certificate.cert)
            client = DashClient(apache_proxy, sio=socketio.Client(reconnection=False,
                                                                  http_session=session))
            clients.append(client.connect())
        nodes = []
        for client in clients:
            wait_for(lambda c=client: c.sio.transport() == "websocket", 10,  # type: ignore[misc]
                     message="the polling -> websocket upgrade through Apache")
            [(_, hello)] = wait_for(lambda c=client: c.events("connection_established"), 10,  # type: ignore[misc]
                                    message="connection_established")
            nodes.append(hello["node"])
        assert len(set(nodes)) >= 2, f"byrequests should spread new clients: {nodes}"
        client = clients[0]
        assert client.subscribe(swarm="apache", channels=["log"])["ok"]
        other = next(n for n in ops_cluster.nodes if n.name != nodes[0])
        r = requests.post(f"{other.url}/api/v1/events", json=[log_event("apache", 1)],
                          timeout=5)
        [event_id] = r.json()["ids"]
        wait_for(lambda: event_id in client.delivered_ids(), 10, message="the event")
    finally:
        for client in clients:
            client.close()


def test_prometheus_paths_are_hidden_however_spelled(apache_proxy: str,
                                                     certificate: Certificate) -> None:
    """The audit: the site had no rule for /api/v1/cluster/targets at all."""
    port = int(apache_proxy.rsplit(":", 1)[1])
    assert prometheus_paths_served(port, certificate) == {}
    assert raw_get(port, "/api/v1/config?x=%2F", ca=certificate.cert)[0] == 200
