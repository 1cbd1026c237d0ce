"""``python -m bench --quick`` runs every system end to end and reports every figure.

Values are not checked (the benchmark never asserts a timing); what is checked is that the
run completes, that every system of the comparison ran without an error, and that the
table, the raw results and the plots hold every figure for every system.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.report import FIGURES
from bench.systems import ALL

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.bench, pytest.mark.integration]


@pytest.mark.timeout(420)
def test_quick_run_reports_every_figure_for_every_system(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]

    table = (tmp_path / "table.md").read_text()
    assert table in run.stdout  # the table is printed, and written
    header = next(line for line in table.splitlines() if line.startswith("| # |"))
    for system in ALL:
        assert system.title in header, f"no column for {system.title}"
    rows = {line.split(" | ")[1] for line in table.splitlines() if line.startswith("| ")}
    for _section, name, *_rest in FIGURES:
        assert name in rows, f"figure missing from the table: {name}"
    assert "Targets (SwarmDash, gevent)" in table

    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["results"]) == {s.key for s in ALL}
    for key, result in results["results"].items():
        assert "error" not in result, f"{key}: {result['error']}"
        assert result["steps"], f"{key}: no step measured"
        assert result["completeness"]["expected"] > 0, f"{key}: no event reached a client"
    # the compressed Node.js peer really compresses: its clients read a fraction of the bytes
    # the same peer sends uncompressed, as SwarmDash's do against its own "no compression"
    def wire(key: str) -> float:
        return float(results["results"][key]["steps"][0]["bytes_per_event"])
    assert wire("node-batched-deflate") < wire("node-batched") / 3
    assert wire("swarmdash") < wire("swarmdash-plain") / 3
    versions = results["meta"]["versions"]
    for name in ("python", "gunicorn", "gevent", "eventlet", "flask-socketio",
                 "python-socketio", "node", "socket.io", "redis-server", "haproxy"):
        assert versions.get(name), f"version of {name} not reported"

    for plot in ("ramp.png", "cpu.png", "wire.png"):
        assert (tmp_path / plot).stat().st_size > 1000, f"{plot} not drawn"
