"""Shared test helpers: waiting on conditions, free ports, real processes, real clients."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import socketio
from requests.adapters import HTTPAdapter

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
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as exc:  # keep polling through transient failures
            last_exc = exc
        else:
            if value:
                return value
        time.sleep(interval)
    detail = f" (last error: {last_exc!r})" if last_exc else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {message}{detail}")


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


class Process:
    """A child process with its output in a log file, stopped cleanly (then killed)."""

    def __init__(self, name: str, argv: list[str], log_dir: Path,
                 env: dict[str, str] | None = None):
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        env = {**os.environ, **(self.env or {})}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, cwd=ROOT, start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.proc is not None
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive:
            return
        assert self.proc is not None
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)

    def kill(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.signal(signal.SIGKILL)
            self.proc.wait(5)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class RedisServer:
    """A private redis-server on a free port, with AOF on so a restart keeps the stream."""

    def __init__(self, data_dir: Path):
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = Process(f"redis-{self.port}", [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.dir),
            "--daemonize", "no"], self.dir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

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
    engine: str  # "gunicorn" (-c infra/gunicorn.conf.py), or swarmdash serve's "gevent"/"eventlet"
    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> requests.Response:
        return requests.get(f"{self.url}/health", timeout=2)

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            if not self.process.alive:
                raise AssertionError(f"{self.name} exited:\n{self.process.tail()}")
            try:
                return self.health().status_code == 200
            except requests.RequestException:
                return False
        try:
            wait_for(ready, timeout, message=f"{self.name} /health 200")
        except AssertionError:
            raise AssertionError(f"{self.name} not ready:\n{self.process.tail()}") from None


def start_node(name: str, engine: str, env: dict[str, str], log_dir: Path) -> Node:
    port = int(env["PORT"])
    if engine == "gunicorn":
        argv = [str(BIN / "gunicorn"), "-c", str(ROOT / "infra" / "gunicorn.conf.py"),
                "swarmdash.wsgi:app"]
    else:
        argv = [sys.executable, "-m", "swarmdash.cli", "serve"]
        env = {**env, "ASYNC_MODE": engine}
    node = Node(name, engine, port, Process(name, argv, log_dir, env).start())
    node.wait_ready()
    return node


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
