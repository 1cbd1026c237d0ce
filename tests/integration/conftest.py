"""Fixtures that start real processes: a private redis-server and three SwarmDash nodes.

Auth is on: clients send the test viewer token (DashClient does), publishers the test API
key (``AGENT_HEADERS``).
Two nodes run under gunicorn's gevent worker (one started as in production with
``gunicorn -c python:swarmdash.gunicorn_conf``, one by ``swarmdash serve``), one under eventlet via
``swarmdash serve``: the cluster must work with mixed engines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import DashClient, Node, NodeGroup, RedisServer, node_group

ENGINES = ("gunicorn", "gevent", "eventlet")


@dataclass
class Cluster:
    redis: RedisServer
    nodes: list[Node]
    log_dir: Path

    def client(self, index: int, **kwargs: object) -> DashClient:
        return DashClient(self.nodes[index].url, **kwargs).connect()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def node_factory(tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> Iterator[NodeGroup]:
    """A private redis-server for the module; ``node_factory.start(name, engine, auth=...,
    SETTING=value)`` starts a node on it, and every node is stopped after the module."""
    with node_group(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])) as group:
        yield group


@pytest.fixture(scope="module")
def cluster(node_factory: NodeGroup) -> Cluster:
    for i, engine in enumerate(ENGINES, 1):
        node_factory.start(f"node{i}", engine, auth=True, COALESCE_AGENT_UPDATES="false")
    return Cluster(node_factory.redis, list(node_factory.nodes), node_factory.log_dir)


@pytest.fixture
def clients() -> Iterator[list[DashClient]]:
    """Collects the clients a test opens and closes them afterwards."""
    opened: list[DashClient] = []
    yield opened
    for client in opened:
        client.close()
