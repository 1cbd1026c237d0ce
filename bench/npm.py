"""The Node.js packages the benchmark runs: the load generator and the Node.js peer."""

from __future__ import annotations

import subprocess
import sys

from .systems import BENCH


def npm_ci() -> None:
    """Install the Node.js dependencies from their lock files when they are missing."""
    for package in (BENCH / "loadgen", BENCH / "peers" / "node"):
        if not (package / "node_modules").is_dir():
            print(f"npm ci in {package.relative_to(BENCH.parent)}", file=sys.stderr)
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=package, check=True,
                           stdout=subprocess.DEVNULL)
