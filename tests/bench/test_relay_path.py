"""``python -m bench.relay_path`` runs the relay's real path and prints its table.

No timing is checked: what is checked is that the harness still drives the relay as a node
does (every room's members are written to, every event is read once) and that the command
prints the figure for each column.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bench.relay_path import measure

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.bench


def test_the_relay_path_reaches_every_member_of_every_room() -> None:
    result = measure(members=3, seconds=2.0)
    assert result["members"] == 33  # 11 rooms: each swarm and "*"
    assert result["events read"] >= 2_000  # 1,210 events/s for 2 s, less rounding
    assert result["cpu_us_per_event"] > 0
    # every member of "*" gets every event, of a swarm's room a tenth: tens of bytes per
    # event read and member once deflated, and never nothing
    assert result["bytes_per_event_member"] > 1


def test_the_command_prints_the_table(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "bench.relay_path", "--seconds", "1",
                          "--repeat", "1", "--members", "2"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| CPU per event read, µs |" in run.stdout
    assert "22 members" in run.stdout


def test_a_half_run_reads_half_the_events_of_the_same_prepared_workload() -> None:
    """What ``--instructions`` subtracts: the same workload prepared, half of it processed."""
    whole = measure(2, 1.0)
    half = measure(2, 1.0, process=0.5)
    assert whole["events read"] > 0 and whole["members"] == 22
    assert half["events read"] * 2 == whole["events read"]
    assert whole["bytes_per_event_member"] > 0, "the members were written to"
