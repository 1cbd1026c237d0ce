"""SwarmDash's benchmark: ``python -m bench --quick`` (see docs/benchmarks.md)."""
