"""``python -m bench.relay_path``: the relay's path in one process, and the half run that
``--instructions`` subtracts (the same workload prepared, half of it processed)."""

from __future__ import annotations

from bench.relay_path import measure


def test_a_half_run_reads_half_the_events_of_the_same_prepared_workload() -> None:
    whole = measure(2, 1.0)
    half = measure(2, 1.0, process=0.5)
    assert whole["events read"] > 0 and whole["members"] == 22
    assert half["events read"] * 2 == whole["events read"]
    assert whole["bytes_per_event_member"] > 0, "the members were written to"
