"""The local cluster (real redis-server, gunicorn nodes, HAProxy, DNS) for the proxy tests.

Every port is free and the nodes bind their own loopback addresses (127.<a>.<b>.N), so a
test run never collides with a cluster a developer has running on the default ports.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import socketio

from swarmdash.cluster.local import LocalCluster, Ports
from tests.helpers import DashClient, free_port, session_from

#: Node settings of the test clusters: quick to stop, quiet logs. Auth is off (the runbooks'
#: commands and the proxy tests are not about it); `cluster up` still makes the cluster's
#: SECRET_KEY and API key, and a test may turn auth on with AUTH_DISABLED=false.
NODE_ENV = {"GRACEFUL_TIMEOUT": "2", "LOG_LEVEL": "warning", "COALESCE_AGENT_UPDATES": "false",
            "HEARTBEAT_INTERVAL": "0.5", "HEARTBEAT_TTL": "3", "AUTH_DISABLED": "true"}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cluster_ports() -> Ports:
    return Ports(plain=free_port(), https=free_port(), http=free_port(), stats=free_port(),
                 dns=free_udp_port(), redis=free_port(), node=free_port(),
                 prometheus=free_port())


def start_cluster(workdir: Path, nodes: int = 3, **kw: object) -> LocalCluster:
    net = f"127.{random.randint(2, 250)}.{random.randint(2, 250)}"
    return LocalCluster(workdir, nodes, ports=cluster_ports(), net=net,
                        node_env={**NODE_ENV, **kw.pop("node_env", {})},  # type: ignore[dict-item]
                        **kw).up()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("lc"))
    try:
        yield cluster
    finally:
        cluster.down()


def client_from(url: str, source: str) -> DashClient:
    """A dashboard client whose long-polling requests and websocket come from ``source``."""
    host, port = url.removeprefix("http://").split(":")
    ws = socket.create_connection((host, int(port)), timeout=10, source_address=(source, 0))
    sio = socketio.Client(reconnection=False, http_session=session_from(source),
                          websocket_extra_options={"socket": ws})
    return DashClient(url, sio=sio)
