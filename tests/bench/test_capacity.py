"""``python -m bench.capacity --size ci`` measures one Redis end to end and reports it.

Timings are not checked (the scenario never asserts a speed): what is checked is that the
run completes, that every reader received every event the publisher appended, that Redis
was seen working (CPU and egress above zero, growing with the readers), and that the
printed table holds every figure for every step.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.capacity import SIZES
from bench.capacity_report import INGEST_ROWS, READER_ROWS

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.bench, pytest.mark.integration]


@pytest.mark.timeout(240)
def test_ci_size_measures_ingest_and_every_reader_gets_every_event(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "bench.capacity", "--size", "ci", "--out",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=220)
    assert run.returncode == 0, run.stderr[-3000:]
    size = SIZES["ci"]

    printed = run.stdout
    assert (tmp_path / "table.md").read_text().strip() in printed.strip()
    rows = {line.split(" | ")[0].removeprefix("| ") for line in printed.splitlines()
            if line.startswith("| ")}
    for label, _key, _scale in (*INGEST_ROWS, *READER_ROWS):
        assert label in rows, f"figure missing from the table: {label}"
    for step in size.readers:
        assert f"| **{step.readers} reader(s), " in printed
    assert "### Unit costs" in printed

    results = json.loads((tmp_path / "results.json").read_text())
    (only,) = results["runs"]
    assert [(s["batch"], s["keyed"]) for s in only["ingest"]] == [
        (step.batch, step.keyed) for step in size.ingest]
    for step in only["ingest"]:
        assert step["events_s"] > 0, step
        assert step["redis_main_share"] > 0, step  # Redis did the work, and it was measured
        assert step["ceiling_events_s"] > step["events_s"] * 0.5, step

    assert [(s["readers"], s["tick_ms"]) for s in only["readers"]] == [
        (step.readers, step.tick_ms) for step in size.readers]
    for step in only["readers"]:
        assert step["stream"] == step["published"] > 0, step
        assert step["all_received"], f"a reader missed events: {step}"
        assert step["received_min"] == step["received_max"] == step["stream"]
        assert step["egress_bytes_s"] > 0 and step["redis_main_share"] > 0, step
        assert step["lag_p99"] is not None and step["lag_p99"] >= step["lag_p50"] >= 0
    one, most = only["readers"][0], only["readers"][1]  # 1 and 3 readers, same appends
    # every reader reads the whole stream: Redis sends about k times what it sends to one
    ratio = most["egress_per_delivered"] / one["egress_per_delivered"]
    assert 0.5 < ratio < 2, (one, most)


def test_an_impossible_option_is_refused_with_a_clear_error() -> None:
    run = subprocess.run([sys.executable, "-m", "bench.capacity", "--repeat", "0"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "--repeat must be at least 1" in run.stderr
