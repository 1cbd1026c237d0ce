"""`swarmdash cluster up --prometheus`: a real Prometheus scrapes every node and HAProxy."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.helpers import wait_for
from tests.local_cluster import start_cluster

pytestmark = pytest.mark.integration


def up_series(url: str) -> dict[tuple[str, str], float]:
    result = requests.get(f"{url}/api/v1/query", params={"query": "up"},
                          timeout=5).json()["data"]["result"]
    return {(r["metric"]["job"], r["metric"].get("node", r["metric"]["instance"])):
            float(r["value"][1]) for r in result}


def test_prometheus_finds_every_node_through_the_registry(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "prom", nodes=3, prometheus=True)
    try:
        names = {n.name for n in cluster.running_nodes()}
        wait_for(lambda: {node for (job, node), v in up_series(cluster.prometheus_url).items()
                          if job == "swarmdash" and v == 1} == names, 60,
                 message="up == 1 for every node")
        wait_for(lambda: any(job == "haproxy" and v == 1 for (job, _), v in
                             up_series(cluster.prometheus_url).items()), 60,
                 message="HAProxy's exporter scraped")
        added = cluster.add_node()
        wait_for(lambda: up_series(cluster.prometheus_url).get(("swarmdash", added.name)) == 1,
                 60, message="the added node scraped without touching Prometheus's config")
    finally:
        cluster.down()
