"""The local cluster runs the compose Prometheus configuration with local addresses."""

from __future__ import annotations

from pathlib import Path

from swarmdash.cluster.prometheus import render_local

COMPOSE = """\
global:
  scrape_interval: 5s
rule_files:
  - alerts.yml
  - "/etc/prometheus/extra.yml"
scrape_configs:
  - job_name: swarmdash
    http_sd_configs:
      - url: http://haproxy:8050/api/v1/cluster/targets
  - job_name: haproxy
    static_configs:
      - targets: ["haproxy:8404"]
"""


def test_addresses_point_at_the_local_haproxy_and_rules_become_absolute(tmp_path: Path) -> None:
    (tmp_path / "prometheus.yml").write_text(COMPOSE)
    out = render_local(tmp_path, http=18050, stats=18404)
    assert "http://127.0.0.1:18050/api/v1/cluster/targets" in out
    assert '["127.0.0.1:18404"]' in out
    assert "haproxy:" not in out
    assert f"  - {tmp_path / 'alerts.yml'}" in out
    assert f"  - {tmp_path / 'extra.yml'}" in out  # rules are the repository's, wherever
    assert "scrape_interval: 5s" in out and "job_name: swarmdash" in out
