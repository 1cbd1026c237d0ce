"""Which metrics a PromQL expression reads, and which metrics exist."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import requests
from prometheus_client import CollectorRegistry

from tests.helpers import Process, free_port, wait_for

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset", "inf", "nan", "atan2"}
#: Series Prometheus makes itself for every target.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, labels and keywords left out)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)       # string literals
    s = re.sub(r"\{[^}]*\}", " ", s)                     # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)                    # range selectors
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\{?\w+\}?", " ", s)                   # Grafana variables
    names: set[str] = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        before = s[m.start() - 1] if m.start() else " "
        if before.isdigit() or before == ".":            # 5m, 1e3, 0.99
            continue
        if s[m.end():].lstrip().startswith("(") or m.group() in KEYWORDS:
            continue
        names.add(m.group())
    return names


def registry_series(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry can expose (counters' _total, histograms' _bucket...)."""
    out: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            out.add(f"{family.name}_total")
        elif family.type == "histogram":
            out |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
        elif family.type == "info":
            out.add(f"{family.name}_info")
        elif family.type == "summary":
            out |= {family.name, f"{family.name}_sum", f"{family.name}_count"}
        else:
            out.add(family.name)
    return out


HAPROXY_EXPORTER_CFG = """
global
    log stdout format raw local0 emerg
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend stats
    bind 127.0.0.1:{port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
frontend public
    bind 127.0.0.1:{port2}
    default_backend socketio
backend socketio
    server node1 127.0.0.1:9 check
"""


def haproxy_exporter_series(haproxy: str) -> set[str]:
    """The series names the installed HAProxy's Prometheus exporter serves, read from a
    real (minimal) HAProxy with a frontend, a backend and a server."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cfg = Path(tmp) / "haproxy.cfg"
        cfg.write_text(HAPROXY_EXPORTER_CFG.format(port=port, port2=free_port()))
        proc = Process("haproxy-exporter", [haproxy, "-db", "-f", str(cfg)], Path(tmp)).start()
        try:
            text = wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/metrics",
                                                 timeout=2).text, 10,
                            message="HAProxy's exporter")
        finally:
            proc.stop(5)
    return {line.split("{")[0].split()[0] for line in text.splitlines()
            if line and not line.startswith("#")}

