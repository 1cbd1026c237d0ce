"""The local cluster (:mod:`swarmdash.cluster`) as the tests run it: on free ports, the nodes
on their own loopback addresses (127.<a>.<b>.N), so a test run never collides with a cluster
a developer has running on the default ports; and clients from chosen source addresses.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

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


def random_net() -> str:
    """The first three parts of the nodes' loopback addresses (NET.1, NET.2, …)."""
    return f"127.{random.randint(2, 250)}.{random.randint(2, 250)}"


def new_cluster(workdir: Path, nodes: int = 3, node_env: dict[str, str] | None = None,
                 **kw: Any) -> LocalCluster:
    """A :class:`LocalCluster` on free ports with the test settings (not started yet)."""
    return LocalCluster(workdir, nodes, ports=kw.pop("ports", None) or cluster_ports(),
                        net=random_net(), node_env={**NODE_ENV, **(node_env or {})}, **kw)


def start_cluster(workdir: Path, nodes: int = 3, node_env: dict[str, str] | None = None,
                  **kw: Any) -> LocalCluster:
    return new_cluster(workdir, nodes, node_env, **kw).up()


def client_from(url: str, source: str) -> DashClient:
    """A dashboard client whose long-polling requests and websocket come from ``source``."""
    host, port = url.removeprefix("http://").split(":")
    ws = socket.create_connection((host, int(port)), timeout=10, source_address=(source, 0))
    sio = socketio.Client(reconnection=False, http_session=session_from(source),
                          websocket_extra_options={"socket": ws})
    return DashClient(url, sio=sio)
