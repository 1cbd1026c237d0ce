"""infra/grafana: provisioning points at the compose Prometheus, the dashboard is valid JSON
and every panel reads metrics that exist (the nodes' registry, HAProxy 2.6's exporter)."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import yaml

from swarmdash.metrics import REGISTRY
from swarmdash.settings import describe
from tests.helpers import ROOT

from .conftest import need
from .promql import SYNTHETIC, haproxy_exporter_series, metric_names, registry_series

GRAFANA = ROOT / "infra" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "swarmdash.json"


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def expressions() -> list[tuple[str, str]]:
    """(panel title, expr) of every query, and the template variables' queries."""
    out = [(panel["title"], target["expr"]) for panel in dashboard()["panels"]
           for target in panel.get("targets", [])]
    for var in dashboard()["templating"]["list"]:
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        out.append((f"${var['name']}", query.removeprefix("label_values(").rsplit(",", 1)[0]))
    return out


@cache
def haproxy_series() -> frozenset[str]:
    return frozenset(haproxy_exporter_series(need("haproxy", "haproxy")))


def test_provisioning_uses_the_compose_prometheus_and_loads_the_dashboard_folder() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [source] = ds["datasources"]
    assert (source["type"], source["url"], source["uid"]) == (
        "prometheus", "http://prometheus:9090", "prometheus")
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "swarmdash.yml").read_text())["providers"]
    assert [p["options"]["path"] for p in providers] == ["/var/lib/grafana/dashboards"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert "./infra/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    assert "./infra/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_dashboard_is_valid_and_every_query_uses_the_provisioned_datasource() -> None:
    data = dashboard()
    assert data["uid"] and data["title"] and data["schemaVersion"] >= 36
    ids = [panel["id"] for panel in data["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in data["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus", panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_dashboard_covers_what_operators_watch() -> None:
    used = set().union(*(metric_names(expr) for _, expr in expressions()))
    for metric in ("swarmdash_connected_clients", "swarmdash_events_ingested_total",
                   "swarmdash_events_emitted_total", "swarmdash_batch_size_events_bucket",
                   "swarmdash_emit_latency_seconds_bucket", "swarmdash_redis_errors_total",
                   "haproxy_server_status"):
        assert metric in used, f"no panel shows {metric}"


def test_every_metric_of_the_dashboard_exists() -> None:
    exported = registry_series(REGISTRY) | SYNTHETIC | haproxy_series()
    for title, expr in expressions():
        names = metric_names(expr)
        assert names, f"{title}: no metric found in {expr!r}"
        unknown = names - exported
        assert not unknown, f"panel {title!r} reads metrics nothing exports: {unknown}"


def test_haproxy_metric_names_come_from_the_real_exporter() -> None:
    """The check above is only as good as the names it compares with."""
    series = haproxy_series()
    assert {"haproxy_server_status", "haproxy_backend_active_servers"} <= series
    assert "haproxy_server_state" not in series


def test_a_panel_that_names_a_setting_reads_the_metric_of_that_setting() -> None:
    """"(of WORKER_CONNECTIONS)" in a title must divide by the metric that reports it."""
    settings = {row[0] for row in describe()}
    metric_of = {}  # setting -> the gauge whose help names it, e.g. swarmdash_client_limit
    for family in REGISTRY.collect():
        for name in re.findall(r"\(([A-Z][A-Z_]+)\)", family.documentation):
            if name in settings:
                metric_of[name] = family.name
    assert {"WORKER_CONNECTIONS", "MAX_CLIENTS_PER_NODE"} <= set(metric_of)
    for panel in dashboard()["panels"]:
        named = [s for s in re.findall(r"[A-Z][A-Z_]{3,}", panel["title"]) if s in metric_of]
        used = set().union(*(metric_names(t["expr"]) for t in panel.get("targets", [])))
        for setting in named:
            assert metric_of[setting] in used, (
                f"panel {panel['title']!r} names {setting} but reads {sorted(used)}")
