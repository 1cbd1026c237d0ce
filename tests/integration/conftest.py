"""Fixtures that start real processes: a private redis-server and three SwarmDash nodes.

Auth is on: clients send the test viewer token (DashClient does), publishers the test API
key (``AGENT_HEADERS``).
Two nodes run under gunicorn's gevent worker (one started as in production with
``gunicorn -c infra/gunicorn.conf.py``, one by ``swarmdash serve``), one under eventlet via
``swarmdash serve``: the cluster must work with mixed engines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import DashClient, Node, RedisServer, free_port, node_env, start_node

ENGINES = ("gunicorn", "gevent", "eventlet")


@dataclass
class Cluster:
    redis: RedisServer
    nodes: list[Node]
    log_dir: Path

    def client(self, index: int, **kwargs: object) -> DashClient:
        return DashClient(self.nodes[index].url, **kwargs).connect()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    log_dir = tmp_path_factory.mktemp("cluster")
    redis = RedisServer(log_dir / "redis").start()
    nodes: list[Node] = []
    try:
        for i, engine in enumerate(ENGINES, 1):
            env = node_env(redis.url, f"node{i}", free_port(), auth=True,
                           MESSAGE_QUEUE_CHANNEL=f"swarmdash-test-{redis.port}",
                           COALESCE_AGENT_UPDATES="false")
            nodes.append(start_node(f"node{i}", engine, env, log_dir))
        yield Cluster(redis, nodes, log_dir)
    finally:
        for node in nodes:
            node.process.stop()
        redis.process.stop()


@pytest.fixture
def clients() -> Iterator[list[DashClient]]:
    """Collects the clients a test opens and closes them afterwards."""
    opened: list[DashClient] = []
    yield opened
    for client in opened:
        client.close()
