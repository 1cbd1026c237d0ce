"""A real Prometheus with the repository's prometheus.yml (rendered for a local run, as
`swarmdash cluster up --prometheus` does) discovers the nodes from the cluster registry,
scrapes them (`up == 1` for each), loads the alert rules, and sees a stopped node as
`up == 0` instead of losing it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from swarmdash.cluster.prometheus import render_local
from tests.helpers import ROOT, Node, Process, free_port, wait_for

from .conftest import OpsCluster, need, replace_exactly
from .test_prometheus import EXPECTED

pytestmark = pytest.mark.integration  # real nginx / Apache / Prometheus and nodes

PROM = ROOT / "infra" / "prometheus"


@dataclass
class Prometheus:
    process: Process
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = requests.get(f"{self.url}/api/v1/query", params={"query": expr},
                            timeout=5).json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        """Active targets with their health and last scrape error (for failure messages)."""
        body = requests.get(f"{self.url}/api/v1/targets", timeout=5).json()
        return [{k: t.get(k) for k in ("scrapeUrl", "health", "lastError")}
                for t in body["data"]["activeTargets"]]

    def up(self) -> dict[str, float]:
        """instance -> value of up{job="swarmdash"}."""
        return {r["metric"]["instance"]: float(r["value"][1])
                for r in self.query('up{job="swarmdash"}')}


@pytest.fixture(scope="module")
def extra_node(ops_cluster: OpsCluster) -> Iterator[Node]:
    """A fourth node, which the test stops."""
    node = ops_cluster.start_node("ops-node-extra")
    try:
        yield node
    finally:
        node.process.stop()


@pytest.fixture(scope="module")
def prometheus(ops_cluster: OpsCluster, extra_node: Node,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = need("prometheus", "prometheus")
    entry = ops_cluster.nodes[0]
    sd = requests.get(f"{entry.url}/api/v1/cluster/targets", timeout=5)
    assert sd.status_code == 200, sd.text  # the registry's service discovery
    out = tmp_path_factory.mktemp("prometheus")
    # Locally the node plays HAProxy's part for service discovery (HAProxy sends
    # /api/v1/cluster/targets to any node); nothing listens on the stats port, so the
    # haproxy job is configured but down. Scrape every 2 s instead of every 10 s; a busy
    # machine can take over a second to answer a scrape, so the timeout stays at 2 s.
    text = render_local(PROM, http=entry.port, stats=free_port())
    text = replace_exactly(text, "scrape_interval: 10s", "scrape_interval: 2s")
    text = replace_exactly(text, "scrape_timeout: 5s", "scrape_timeout: 2s")
    text = replace_exactly(text, "refresh_interval: 15s", "refresh_interval: 1s")
    config = out / "prometheus.yml"
    config.write_text(text)
    port = free_port()
    process = Process("prometheus", [
        binary, f"--config.file={config}", f"--storage.tsdb.path={out / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}"], out).start()
    server = Prometheus(process, f"http://127.0.0.1:{port}")
    try:
        def ready() -> bool:  # or exited: wait_for would retry through an exception
            return not process.alive or requests.get(f"{server.url}/-/ready",
                                                     timeout=2).status_code == 200
        wait_for(ready, 30, message="Prometheus ready")
        assert process.alive, f"prometheus exited:\n{process.tail()}"
        yield server
    finally:
        process.stop(10)


def test_every_node_is_discovered_and_up(prometheus: Prometheus, ops_cluster: OpsCluster,
                                         extra_node: Node) -> None:
    names = {n.name for n in ops_cluster.nodes} | {extra_node.name}

    seen: dict[str, float] = {}

    def all_up() -> bool:
        seen.clear()
        seen.update(prometheus.up())
        return set(seen) == names and all(v == 1 for v in seen.values())

    try:
        wait_for(all_up, 60, message=f"up == 1 for every node of {sorted(names)}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last up{{job=swarmdash}}: {seen}; targets: "
                             f"{prometheus.targets()}") from None
    addresses = {r["metric"]["instance"]: r["metric"]["address"]
                 for r in prometheus.query('up{job="swarmdash"}')}
    assert addresses[extra_node.name] == f"127.0.0.1:{extra_node.port}"
    clients = prometheus.query('swarmdash_connected_clients{job="swarmdash"}')
    assert {r["metric"]["instance"] for r in clients} == names, "node metrics are scraped"
    wait_for(lambda: prometheus.query('up{job="haproxy"}'), 10,
             message="the haproxy job's target (configured, down here)")


def test_alert_rules_are_loaded(prometheus: Prometheus) -> None:
    def rules() -> list[dict[str, Any]]:
        groups = requests.get(f"{prometheus.url}/api/v1/rules", timeout=5).json()["data"]
        return [rule for group in groups["groups"] for rule in group["rules"]]

    assert {rule["name"] for rule in rules()} == set(EXPECTED)
    # Health is "unknown" until a rule's first evaluation, then "ok" or "err".
    evaluated = wait_for(lambda: (r := rules()) and all(x["health"] != "unknown" for x in r)
                         and r, 30, message="every rule evaluated once")
    for rule in evaluated:
        assert rule["health"] == "ok", rule


def test_a_stopped_node_stays_a_target_and_shows_up_0(prometheus: Prometheus,
                                                      extra_node: Node) -> None:
    wait_for(lambda: prometheus.up().get(extra_node.name) == 1, 60, message="extra node up")
    extra_node.process.stop()
    wait_for(lambda: prometheus.up().get(extra_node.name) == 0, 60,
             message=f"up == 0 for the stopped {extra_node.name}")
    up = prometheus.up()
    assert all(v == 1 for name, v in up.items() if name != extra_node.name), up


def test_rendered_config_keeps_the_repository_rules(tmp_path: Path) -> None:
    text = render_local(PROM, http=1, stats=2)
    assert str(PROM / "alerts.yml") in text
    assert "haproxy:" not in text
