"""/metrics follows Prometheus' conventions: units in names, build info, process metrics."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from swarmdash import __version__, metrics


def exposed() -> dict[str, str]:
    """Every family on /metrics: name -> help."""
    metrics.record_emission("log_batch", 3, 2, 0.1)
    metrics.INGEST_REJECTED.labels(reason="invalid").inc()
    text = metrics.exposition().decode()
    return {f.name: f.documentation for f in text_string_to_metric_families(text)}


def sample_names() -> set[str]:
    return {line.split("{")[0].split(" ")[0]
            for line in metrics.exposition().decode().splitlines() if not line.startswith("#")}


def test_no_created_series() -> None:
    exposed()
    assert not [name for name in sample_names() if name.endswith("_created")]


def test_build_info_names_the_version() -> None:
    text = metrics.exposition().decode()
    found = re.search(r'^swarmdash_build_info\{([^}]*)\} 1\.0$', text, re.M)
    assert found and f'version="{__version__}"' in found.group(1)


def test_process_collector_is_exported() -> None:
    names = sample_names()
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "process_start_time_seconds"):
        assert name in names


def test_ingest_rejected_says_it_counts_requests() -> None:
    assert "request" in exposed()["swarmdash_ingest_rejected"]


def test_histograms_name_their_unit() -> None:
    text = metrics.exposition().decode()
    histograms = {f.name for f in text_string_to_metric_families(text) if f.type == "histogram"}
    assert histograms and all(name.endswith(("_seconds", "_events", "_bytes"))
                              for name in histograms), histograms
