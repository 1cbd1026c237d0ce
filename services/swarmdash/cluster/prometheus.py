"""Render ``infra/prometheus/prometheus.yml`` (written for docker-compose) for a local run.

The compose file reaches HAProxy as ``haproxy:8050`` (plain HTTP, where the node registry
serves Prometheus's targets) and ``haproxy:8404`` (HAProxy's exporter), and its rule files
where compose mounts them. Locally the same file is used with those two addresses pointed
at 127.0.0.1 ports and the rule files at the repository's: the scrape jobs, intervals and
rules stay those of the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

COMPOSE_PLAIN = "haproxy:8050"
COMPOSE_STATS = "haproxy:8404"


def render_local(src: Path, *, http: int, stats: int) -> str:
    text = (src / "prometheus.yml").read_text()
    text = text.replace(COMPOSE_PLAIN, f"127.0.0.1:{http}")
    text = text.replace(COMPOSE_STATS, f"127.0.0.1:{stats}")
    out, in_rules = [], False
    for line in text.splitlines():
        if re.match(r"^rule_files:\s*$", line):
            in_rules = True
        elif in_rules:
            m = re.match(r"^(\s*-\s*)['\"]?([^'\"#\s]+)['\"]?\s*$", line)
            if m:
                path = Path(m.group(2))
                line = f"{m.group(1)}{src / path.name}"  # the repository's rules
            elif line.strip() and not line.startswith((" ", "\t", "-")):
                in_rules = False
        out.append(line)
    return "\n".join(out) + "\n"
