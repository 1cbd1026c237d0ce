"""The systems under test, each as 3 nodes behind the repository's HAProxy config.

Every system runs in the topology of ``swarmdash cluster up`` (:mod:`swarmdash.cluster.local`:
redis-server, a DNS responder, nodes on their own loopback addresses, HAProxy with
``haproxy/haproxy.cfg``); only the node command differs. Ports are free ones and the nodes'
loopback network is random, so a run never collides with a developer's cluster.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from swarmdash.cluster.local import LocalCluster, NodeInfo, Ports

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
NODE_PEER = BENCH / "peers" / "node" / "server.mjs"

#: SwarmDash's default batch windows, ms (the Node.js batched peer uses the same).
WINDOWS_MS = {"agent": 200, "task": 200, "metric": 500, "log": 1000}


@dataclass(frozen=True)
class System:
    key: str          # column name in the table
    title: str
    kind: str         # swarmdash | fsio | node
    engine: str = ""  # gevent | eventlet | threading (SwarmDash), perevent | batched (Node)
    batched: bool = True
    env: dict[str, str] = field(default_factory=dict)
    source: str = ""  # another checkout of SwarmDash to run (the "before" column)

    @property
    def windows(self) -> dict[str, int]:
        """Batch window per channel (0 for systems that emit each event on its own)."""
        return WINDOWS_MS if self.batched else dict.fromkeys(WINDOWS_MS, 0)


SWARMDASH = System("swarmdash", "SwarmDash (gevent)", "swarmdash", "gevent")
EVENTLET = System("swarmdash-eventlet", "SwarmDash (eventlet)", "swarmdash", "eventlet")
THREADING = System("swarmdash-threading", "SwarmDash (threading)", "swarmdash", "threading")
FSIO = System("flask-socketio", "stock Flask-SocketIO", "fsio", "gevent", batched=False)
NODE_PEREVENT = System("node-perevent", "Node.js Socket.IO, per event", "node", "perevent",
                       batched=False)
NODE_BATCHED = System("node-batched", "Node.js Socket.IO, batched", "node", "batched")
#: The batched Node.js peer with compression on, as ``perMessageDeflate: true`` turns it on
#: (every message compressed, in a context per connection): the peer at about SwarmDash's
#: bytes on the wire, with its clients inflating as SwarmDash's do.
NODE_BATCHED_DEFLATE = System("node-batched-deflate", "Node.js Socket.IO, batched, compressed",
                              "node", "batched", env={"PER_MESSAGE_DEFLATE": "true"})
POLLING = System("polling", "polling /api/v1/events (1 s)", "polling", "gevent", batched=False)

#: Before/after rows of the websocket frame optimisation (wsframes.py): a compression
#: context per client (the stock behaviour: every batch deflated once per client), and no
#: compression at all (frames built once, larger on the wire).
PER_CLIENT_DEFLATE = System("swarmdash-perclient", "SwarmDash, per-client deflate (before)",
                            "swarmdash", "gevent",
                            env={"WEBSOCKET_COMPRESSION": "per-client"})
NO_DEFLATE = System("swarmdash-plain", "SwarmDash, no compression", "swarmdash", "gevent",
                    env={"WEBSOCKET_COMPRESSION": "off"})

ALL = (SWARMDASH, POLLING, FSIO, NODE_PEREVENT, NODE_BATCHED, NODE_BATCHED_DEFLATE, EVENTLET,
       THREADING, PER_CLIENT_DEFLATE, NO_DEFLATE)


def before(source: Path) -> System:
    """SwarmDash as another checkout has it (``--before DIR``): the before column of a change,
    run in the same run as everything else."""
    return System("swarmdash-before", "SwarmDash before (gevent)", "swarmdash", "gevent",
                  source=str(source.resolve()))

#: Settings of every node: quiet logs, quick stops, room for 10k+ websockets per node.
NODE_ENV = {"LOG_LEVEL": "warning", "GRACEFUL_TIMEOUT": "2", "WORKER_CONNECTIONS": "30000",
            "MAX_ROOM_SIZE": "100000"}


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class BenchCluster(LocalCluster):
    """The local cluster running the nodes of ``system``; HAProxy's maxconn raised."""

    def __init__(self, workdir: Path, system: System, nodes: int = 3, *, maxconn: int,
                 extra_env: dict[str, str] | None = None):
        ports = Ports(plain=free_port(), https=free_port(), http=free_port(), stats=free_port(),
                      dns=free_port(socket.SOCK_DGRAM), redis=free_port(), node=free_port(),
                      prometheus=free_port())
        net = f"127.{random.randint(100, 250)}.{random.randint(2, 250)}"
        super().__init__(workdir, nodes, ports=ports, net=net,
                         node_env={**NODE_ENV, **system.env, **(extra_env or {})})
        self.system = system
        self.maxconn = maxconn
        self.socket_dir = Path(tempfile.mkdtemp(prefix="swarmdash-bench-"))

    def haproxy_environment(self) -> dict[str, str]:
        # HAProxy refuses a stats socket path over 97 bytes: keep it short, whatever --out is
        return {**super().haproxy_environment(), "SWARMDASH_HAPROXY_MAXCONN": str(self.maxconn),
                "SWARMDASH_HAPROXY_SOCKET": str(self.socket_dir / "haproxy.sock")}

    def down(self) -> None:
        super().down()
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def _node_command(self, node: NodeInfo) -> tuple[list[str], dict[str, str]]:
        s = self.system
        env = self.node_environment(node)
        if s.kind == "node":
            return (["node", str(NODE_PEER)],
                    {**env, "MODE": s.engine, "BATCH_WINDOWS": json.dumps(WINDOWS_MS)})
        if s.kind == "fsio":
            return ([sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "1",
                     "--worker-connections", env["WORKER_CONNECTIONS"], "--graceful-timeout", "2",
                     "--no-control-socket", "-b", f"{node.host}:{self.state.ports.node}",
                     "bench.peers.flask_socketio_app:app"],
                    {**env, "PYTHONPATH": str(REPO)})
        root = Path(s.source) if s.source else REPO
        if s.source:
            env = {**env, "PYTHONPATH": str(root / "services")}
        if s.engine == "gevent":  # the production server: gunicorn with the node's config
            return [sys.executable, "-m", "gunicorn", "-c", "python:swarmdash.gunicorn_conf",
                    "swarmdash.wsgi:app"], env
        return [sys.executable, "-m", "swarmdash.cli", "serve"], {**env, "ASYNC_MODE": s.engine}

    def _start_node(self, node: NodeInfo) -> None:
        argv, env = self._node_command(node)
        node.running = False
        node.pid = self.procs.spawn(node.name, argv, env)
        self.save()

    def role_pids(self) -> dict[str, list[int]]:
        return {"nodes": [n.pid for n in self.state.nodes if n.pid],
                "redis": [self.state.pids["redis"]], "haproxy": [self.state.pids["haproxy"]]}
