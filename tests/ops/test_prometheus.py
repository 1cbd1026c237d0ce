"""infra/prometheus: the config and rules pass promtool, the alerts fire as meant (promtool's
rule unit tests), and every rule reads metrics the nodes really export."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarmdash.cluster.prometheus import render_local
from swarmdash.metrics import REGISTRY
from tests.helpers import ROOT

from .conftest import need
from .promql import SYNTHETIC, metric_names, registry_series

PROM = ROOT / "infra" / "prometheus"
RUNBOOK_BASE = "https://github.com/swarmdash/swarmdash/blob/main/docs/runbooks/"
#: alert -> runbook (docs/runbooks/<file>) and the metric its expression must read.
EXPECTED = {
    "SwarmDashNodeDown": ("node-down.md", "up"),
    "SwarmDashRedisUnavailable": ("redis-unavailable.md", "swarmdash_redis_errors_total"),
    "SwarmDashRelayLagHigh": ("relay-lag-high.md", "swarmdash_relay_lag_seconds"),
    "SwarmDashEmitLatencyHigh": ("emit-latency-high.md", "swarmdash_emit_latency_seconds_bucket"),
    "SwarmDashSlowConsumersDropped": ("slow-consumers.md", "swarmdash_slow_consumer_drops_total"),
    "SwarmDashFallbackPollingHigh": ("fallback-polling-high.md",
                                     "swarmdash_fallback_polls_total"),
    "SwarmDashConnectionsNearLimit": ("connections-near-limit.md",
                                      "swarmdash_client_limit"),
    "SwarmDashIngestRateLimited": ("ingest-rate-limited.md", "swarmdash_ingest_rejected_total"),
    "SwarmDashRedisFailover": ("redis-failover.md", "swarmdash_redis_primary_changes_total"),
    "SwarmDashRedisReplicaLost": ("redis-replica-lost.md", "swarmdash_redis_replicas"),
    "SwarmDashSentinelQuorumLost": ("sentinel-quorum-lost.md",
                                    "swarmdash_redis_sentinel_quorum"),
    "SwarmDashRedisReplicationLag": ("redis-replication-lag.md",
                                     "swarmdash_redis_replication_lag_seconds"),
}


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need("promtool", "prometheus"), *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_config_passes_promtool_as_written_and_as_rendered_for_a_local_run(
        tmp_path: Path) -> None:
    result = promtool("check", "config", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr
    local = tmp_path / "prometheus.yml"
    local.write_text(render_local(PROM, http=18050, stats=18404))
    result = promtool("check", "config", str(local))
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_reaches_haproxy_only_and_discovers_nodes_from_the_registry() -> None:
    text = (PROM / "prometheus.yml").read_text()
    addresses = set(re.findall(r"[A-Za-z0-9_.-]+:\d{2,5}\b", text))
    assert addresses == {"haproxy:8050", "haproxy:8404"}, \
        "the local cluster renders exactly these two addresses"
    config = yaml.safe_load(text)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"swarmdash", "haproxy"}
    node_sd = jobs["swarmdash"]["http_sd_configs"]
    assert [sd["url"] for sd in node_sd] == ["http://haproxy:8050/api/v1/cluster/targets"]
    assert "static_configs" not in jobs["swarmdash"], "nodes are listed once: in the registry"
    assert jobs["haproxy"]["static_configs"] == [{"targets": ["haproxy:8404"]}]
    assert config["rule_files"] == ["alerts.yml"]


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(PROM / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(EXPECTED)} rules found" in result.stdout


def test_alerts_fire_after_their_for_and_not_for_healthy_series() -> None:
    """tests/ops/alerts_test.yml: e.g. a node down for less than its `for:` does not alert,
    after it does; a node at 50% of its connections does not alert, one at 90% does."""
    result = promtool("test", "rules", "tests/ops/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)",
                            (ROOT / "tests" / "ops" / "alerts_test.yml").read_text()))
    assert tested == set(EXPECTED), "every alert has a unit test"


def test_every_alert_has_for_severity_summary_and_its_runbook() -> None:
    by_name = {rule["alert"]: rule for rule in rules()}
    assert set(by_name) == set(EXPECTED)
    for name, (runbook, metric) in EXPECTED.items():
        rule = by_name[name]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: no for:"
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        notes = rule["annotations"]
        assert notes["summary"].strip() and notes["description"].strip(), name
        assert notes["runbook_url"] == RUNBOOK_BASE + runbook, name
        assert (ROOT / "docs" / "runbooks" / runbook).is_file(), f"{name}: no {runbook}"
        assert metric in metric_names(rule["expr"]), f"{name} does not read {metric}"


def test_every_rule_reads_only_metrics_that_exist() -> None:
    exported = registry_series(REGISTRY) | SYNTHETIC
    for rule in rules():
        unknown = metric_names(rule["expr"]) - exported
        assert not unknown, f"{rule['alert']} reads metrics nothing exports: {unknown}"


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (le, event) (rate(swarmdash_emit_latency_seconds_bucket{job="x"}[5m]))',
     {"swarmdash_emit_latency_seconds_bucket"}),
    ('a / (b > 0) > 0.8 or vector(0)', {"a", "b"}),
    ('histogram_quantile(0.99, sum(rate(x_bucket[$__rate_interval])) by (le))', {"x_bucket"}),
    ('count(up{job="swarmdash"} == 0) offset 5m', {"up"}),
])
def test_metric_names_finds_the_selected_series(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
