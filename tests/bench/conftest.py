"""The benchmark's smoke test: select it with ``pytest -m bench``."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "bench: runs the benchmark's quick mode (python -m bench --quick, ~2 min)")
