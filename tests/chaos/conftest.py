"""The chaos suite's cluster: `swarmdash.cluster.local` (redis-server with AOF, gunicorn
nodes, HAProxy, DNS), with the third node reaching Redis through a link process
(tests/chaos/link.py) that a scenario can freeze. The table of every scenario's figures is
printed at the end of the run.

Sizes: the CI size by default, the full size with ``SWARMDASH_CHAOS=full`` (see
docs/reliability.md).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from swarmdash.cluster.local import LocalCluster, NodeInfo
from tests.helpers import ROOT
from tests.local_cluster import new_cluster

from .harness import Result, Sizes, table

RESULTS: list[Result] = []


@dataclass
class Chaos:
    cluster: LocalCluster
    link: subprocess.Popen[str]   # the link between ``linked`` and Redis
    linked: NodeInfo
    sizes: Sizes
    log_dir: Path


def start_link(redis_port: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.chaos.link", str(redis_port)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    workdir = tmp_path_factory.mktemp("chaos")
    cluster = new_cluster(workdir / "cluster", 2, node_env={"SECRET_KEY": secrets.token_hex(32)})
    link: subprocess.Popen[str] | None = None
    try:
        cluster.up()
        link, port = start_link(cluster.state.ports.redis)
        linked = cluster.add_node(env={"REDIS_URL": f"redis://127.0.0.1:{port}/0"})
        yield Chaos(cluster, link, linked, Sizes.from_env(), workdir)
    finally:
        cluster.down()
        if link is not None:
            link.kill()
            link.wait(5)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    sizes = RESULTS[0].sizes
    terminalreporter.section("chaos: accepted vs delivered, per scenario")
    terminalreporter.write_line(
        f"size {sizes.name}: {sizes.clients} clients, {sizes.rate:g} events/s over "
        f"{sizes.swarms} swarms, Redis pause / node cut {sizes.pause_s:g} s, "
        f"{sizes.offline_clients} clients offline {sizes.offline_s:g} s")
    terminalreporter.write_line(table(RESULTS))
    for result in RESULTS:
        for note in result.notes:
            terminalreporter.write_line(f"{result.scenario}: {note}")
