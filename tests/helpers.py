"""Shared test helpers: waiting on conditions, free ports, real processes, real clients.

Processes, redis-servers and nodes are started and waited for with the local cluster's own
functions (:mod:`swarmdash.cluster`): the tests and ``swarmdash cluster`` share one harness.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import socketio
from requests.adapters import HTTPAdapter

from swarmdash.cluster import processes
from swarmdash.cluster.local import node_command, wait_healthy
from swarmdash.cluster.processes import Timeout, wait_until
from swarmdash.cluster.redis import ping, server_argv

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

#: Credentials of every test node (random per test run): nodes sign viewer tokens with
#: TEST_SECRET_KEY and accept AGENT_KEY for every swarm. Auth is off (AUTH_DISABLED=true)
#: unless a node is started with ``node_env(..., auth=True)``; clients send the
#: credentials either way.
TEST_SECRET_KEY = "test-secret-" + secrets.token_hex(24)
AGENT_KEY = "sdk_test" + secrets.token_urlsafe(24)
AGENT_KEY_ID = "test-agent"
AGENT_KEY_ENTRY = f"{AGENT_KEY_ID}:{hashlib.sha256(AGENT_KEY.encode()).hexdigest()}:*"
AGENT_HEADERS = {"Authorization": f"Bearer {AGENT_KEY}"}
#: The node settings of those credentials (for nodes started without node_env).
AUTH_ENV = {"SECRET_KEY": TEST_SECRET_KEY, "API_KEYS": AGENT_KEY_ENTRY}


def viewer_token(swarms: list[str] | None = None, ttl: float = 3600, name: str = "tester",
                 secret: str = TEST_SECRET_KEY) -> str:
    """A viewer token for ``swarms`` (None: every swarm), signed like `swarmdash token`."""
    from swarmdash.auth import issue_token

    return issue_token(secret, swarms=swarms, ttl=ttl, name=name)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail with ``message`` on timeout."""
    try:
        return wait_until(predicate, timeout, message, interval)
    except Timeout as exc:
        raise AssertionError(str(exc)) from None


def metric_value(node_url: str, sample: str) -> float:
    """The value of one sample (``name`` or ``name{labels}``) on a node's /metrics."""
    for line in requests.get(f"{node_url}/metrics", timeout=5).text.splitlines():
        if line.rsplit(" ", 1)[0] == sample:
            return float(line.split()[-1])
    return 0.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Process(processes.Process):
    """A child process of a test, run from the repository's root, its output in
    ``<log_dir>/<name>.log``."""

    def __init__(self, name: str, argv: list[str], log_dir: Path,
                 env: dict[str, str] | None = None):
        super().__init__(name, argv, log_dir, env, cwd=ROOT)


class RedisServer:
    """A private redis-server on a free port, with AOF on so a restart keeps the stream."""

    def __init__(self, data_dir: Path):
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process = Process(f"redis-{self.port}", server_argv(self.port, self.dir), self.dir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        return ping(self.port)

    def start(self) -> RedisServer:
        self.process.start()
        wait_for(self.ping, 10, message=f"redis-server on {self.port}")
        return self

    def stop(self) -> None:
        self.process.stop()
        wait_for(lambda: not self.ping(), 10, message="redis-server to stop")


#: Spellings of the Prometheus-only paths a node answers (percent-escapes, doubled and
#: encoded slashes) or that a proxy must not let through (dot segments, case, a trailing
#: slash): a public entrypoint answers none of them.
PROMETHEUS_PATH_SPELLINGS = (
    "/metrics", "/%6detrics", "/%6Detrics", "//metrics", "///metrics", "/%2fmetrics",
    "/./metrics", "/x/../metrics", "/%2e/metrics", "/metrics/", "/METRICS", "/metrics?x=1",
    "/api/v1/cluster/targets", "//api/v1/cluster/targets", "/api/v1/cluster/%74argets",
    "/api//v1/cluster/targets", "/api/v1/cluster%2ftargets", "/api/v1/cluster%2Ftargets",
    "/%61pi/v1/cluster/targets", "/api/v1/cluster/./targets", "/api/v1/x/../cluster/targets",
    "/api/v1/cluster/%2e%2e/cluster/targets", "/API/V1/CLUSTER/TARGETS",
    "/api/v1/cluster/targets/", "/api/v1/cluster/targets?x=1")


def raw_get(port: int, path: str, *, ca: Path | None = None, host: str = "127.0.0.1",
            headers: dict[str, str] | None = None,
            host_header: str | None = None) -> tuple[int, bytes]:
    """(status, body) of ``GET path`` sent byte for byte (an HTTP client would normalise
    it), over TLS when ``ca`` is given; ``Host`` is ``host:port`` unless ``host_header``."""
    sock: socket.socket = socket.create_connection((host, port), timeout=10)
    if ca is not None:
        sock = ssl.create_default_context(cafile=str(ca)).wrap_socket(sock,
                                                                       server_hostname=host)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    with sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host_header or f'{host}:{port}'}\r\n"
                     f"{extra}"
                     "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


class SourceAddressAdapter(HTTPAdapter):
    """requests from a chosen local address: proxies that hash the client's address
    (HAProxy `balance source`, nginx `hash $remote_addr`) see distinct clients."""

    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(source: str) -> requests.Session:
    """A requests session whose connections come from ``source`` (e.g. 127.0.0.12)."""
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, SourceAddressAdapter(source))
    return session


def node_env(redis_url: str, node_id: str, port: int, *, auth: bool = False,
             **extra: str) -> dict[str, str]:
    """A test node's environment: production mode with the test credentials; API keys and
    viewer tokens required only with ``auth=True``."""
    env = {"REDIS_URL": redis_url, "NODE_ID": node_id, "HOST": "127.0.0.1", "PORT": str(port),
           "SWARMDASH_ENV_FILE": "/nonexistent", "LOG_LEVEL": "warning", "GRACEFUL_TIMEOUT": "2",
           "PYTHONUNBUFFERED": "1", "FLASK_DEBUG": "false", **AUTH_ENV,
           "AUTH_DISABLED": "false" if auth else "true"}
    env.update(extra)
    return env


@dataclass
class Node:
    name: str
    # "gunicorn" (-c python:swarmdash.gunicorn_conf), or swarmdash serve's "gevent"/"eventlet"
    engine: str
    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> requests.Response:
        return requests.get(f"{self.url}/health", timeout=2)

    def wait_ready(self, timeout: float = 30) -> None:
        wait_healthy(self.name, self.url, lambda: self.process.alive, self.process.tail, timeout)


def start_node(name: str, engine: str, env: dict[str, str], log_dir: Path,
               wait: bool = True) -> Node:
    """A node under gunicorn as in production (``engine="gunicorn"``) or ``swarmdash serve``
    with ``engine`` as ASYNC_MODE; waited for until /health answers 200 unless ``wait=False``."""
    port = int(env["PORT"])
    if engine == "gunicorn":
        argv = node_command()
    else:
        argv = [sys.executable, "-m", "swarmdash.cli", "serve"]
        env = {**env, "ASYNC_MODE": engine}
    node = Node(name, engine, port, Process(name, argv, log_dir, env).start())
    if wait:
        node.wait_ready()
    return node


class NodeGroup:
    """A private redis-server and the nodes a test starts on it, every one stopped by
    :meth:`stop` (the nodes' shared Socket.IO channel is unique to that server)."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.redis = RedisServer(log_dir / "redis").start()
        self.channel = f"swarmdash-test-{self.redis.port}"
        self.nodes: list[Node] = []

    def env(self, name: str, *, auth: bool = False, **settings: str) -> dict[str, str]:
        """A node's environment on this group's Redis: the test settings and ``settings``."""
        return node_env(self.redis.url, name, free_port(), auth=auth,
                        MESSAGE_QUEUE_CHANNEL=self.channel, **settings)

    def start(self, name: str, engine: str = "gunicorn", *, auth: bool = False,
              wait: bool = True, log_dir: Path | None = None, **settings: str) -> Node:
        """One more node of the group (stopped with it)."""
        env = self.env(name, auth=auth, **settings)
        node = start_node(name, engine, env, log_dir or self.log_dir, wait=False)
        self.nodes.append(node)
        if wait:
            node.wait_ready()
        return node

    def by_name(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def stop(self) -> None:
        for node in self.nodes:
            node.process.stop()
        self.redis.process.stop()


@contextlib.contextmanager
def node_group(log_dir: Path) -> Iterator[NodeGroup]:
    """A :class:`NodeGroup` for the duration of the block."""
    group = NodeGroup(log_dir)
    try:
        yield group
    finally:
        group.stop()


@dataclass
class DashClient:
    """A python-socketio client that records everything a dashboard would receive."""

    url: str
    transports: list[str] | None = None
    sio: socketio.Client = field(default_factory=lambda: socketio.Client(reconnection=False))
    #: Sent in the connect's auth payload (an all-swarms viewer token by default; None: none).
    token: str | None = field(default_factory=viewer_token)
    received: list[tuple[str, Any]] = field(default_factory=list)
    cursor: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.sio.on("*", self._record)

    def _record(self, event: str, data: Any = None) -> None:
        with self.lock:
            self.received.append((event, data))
            if isinstance(data, dict) and data.get("cursor"):
                self.cursor = data["cursor"]

    def connect(self) -> DashClient:
        self.sio.connect(self.url, transports=self.transports, wait_timeout=10,
                         auth={"token": self.token} if self.token else None)
        return self

    def subscribe(self, **payload: Any) -> dict[str, Any]:
        ack: dict[str, Any] = self.sio.call("subscribe", payload, timeout=15)
        if ack.get("ok"):
            with self.lock:
                self.cursor = ack["cursor"]
        return ack

    def events(self, name: str | None = None) -> list[tuple[str, Any]]:
        with self.lock:
            return [(e, d) for e, d in self.received if name is None or e == name]

    def delivered(self) -> list[dict[str, Any]]:
        """Every stream event received, in arrival order (batches unrolled)."""
        out: list[dict[str, Any]] = []
        with self.lock:
            for name, data in self.received:
                if not isinstance(data, dict):
                    continue
                if name.endswith("_update_batch"):
                    out.extend(data["batch"])
                elif name in ("system_alert", "agent_critical_update") and "id" in data:
                    out.append(data)
        return out

    def delivered_ids(self) -> list[str]:
        return [e["id"] for e in self.delivered()]

    def close(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()


def id_key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)
