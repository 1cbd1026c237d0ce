"""The cluster without Docker: redis-server, N nodes under gunicorn, HAProxy, optionally
Prometheus, as real processes on loopback, from the repository's own config files.

The topology is the docker-compose one: HAProxy runs ``haproxy/haproxy.cfg`` unchanged and
finds the nodes through DNS (:mod:`swarmdash.cluster.dns` answers for the nodes this cluster
runs), each node binds its own loopback address (127.0.1.1, 127.0.1.2, …) on the same
port, like containers. Processes outlive the command that started them; their pids, ports
and addresses live in ``<dir>/cluster.json`` so ``status``, ``down`` and the node
commands work from another shell. Logs: ``<dir>/logs/<process>.log``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import redis as redis_lib
import requests

from ..serving import CONFIG
from . import ClusterError
from .ports import MAX_NODES, REDIS_MODES, Ports
from .processes import Processes, Timeout, pid_alive, port_free, wait_until
from .redis import SentinelTiming, Topology, ping, server_argv

__all__ = ["MAX_NODES", "ClusterError", "LocalCluster", "NodeInfo", "Ports"]

NODES_FQDN = "nodes.swarmdash.local"
STATE_FILE = "cluster.json"
SENTINEL_SERVERS = 3
#: Process names of Redis in the state file, whichever mode (sentinels stop last).
REDIS_PROCESSES = ("redis", *(f"redis{i + 1}" for i in range(SENTINEL_SERVERS)),
                   *(f"sentinel{i + 1}" for i in range(SENTINEL_SERVERS)))


def repo_root() -> Path:
    """The checkout holding haproxy/ and infra/ (the local cluster runs from a checkout)."""
    env = os.environ.get("SWARMDASH_REPO")
    for root in ([Path(env)] if env else []) + [Path(__file__).resolve().parents[3], Path.cwd()]:
        if (root / "haproxy" / "haproxy.cfg").is_file():
            return root
    raise ClusterError("haproxy/haproxy.cfg not found: run from a SwarmDash checkout "
                       "or set SWARMDASH_REPO to one")


def node_command() -> list[str]:
    """How a node runs: gunicorn with the repository's config (as in production)."""
    return [sys.executable, "-m", "gunicorn", "-c", CONFIG, "swarmdash.wsgi:app"]


def wait_healthy(name: str, url: str, alive: Callable[[], bool], log: Callable[[], str],
                 timeout: float) -> None:
    """Wait until the node at ``url`` answers ``/health`` with 200; :class:`ClusterError`
    with the end of its log as soon as it exits, or after ``timeout`` s."""
    def ready() -> bool:
        if not alive():
            raise ClusterError(f"{name} exited:\n{log()}")
        return requests.get(f"{url}/health", timeout=1).status_code == 200

    try:
        wait_until(ready, timeout, f"{name} /health 200", fatal=(ClusterError,))
    except Timeout:
        raise ClusterError(f"{name} not healthy:\n{log()}") from None


@dataclass
class NodeInfo:
    name: str
    host: str
    pid: int | None = None
    running: bool = True  # listed in DNS (False once removed on purpose)
    env: dict[str, str] = field(default_factory=dict)  # settings of this node only


@dataclass
class State:
    nodes: list[NodeInfo] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)  # redis, dns, haproxy, prometheus
    ports: Ports = field(default_factory=Ports)
    net: str = "127.0.1"
    stickiness: str = "source"
    node_env: dict[str, str] = field(default_factory=dict)
    next_index: int = 1
    redis: str = "single"  # or "sentinel": a primary, two replicas, three sentinels

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> State:
        raw = json.loads(text)
        return cls(nodes=[NodeInfo(**n) for n in raw["nodes"]], pids=raw["pids"],
                   ports=Ports(**raw["ports"]), net=raw["net"], stickiness=raw["stickiness"],
                   node_env=raw["node_env"], next_index=raw["next_index"],
                   redis=raw.get("redis", "single"))


class LoopbackUrl:
    """``cluster.http_url`` and the like: the URL of one of the cluster's ports (a field of
    :class:`Ports`) on 127.0.0.1."""

    def __init__(self, port: str, scheme: str = "http"):
        self.port, self.scheme = port, scheme

    def __get__(self, cluster: LocalCluster, owner: type | None = None) -> str:
        return f"{self.scheme}://127.0.0.1:{getattr(cluster.state.ports, self.port)}"


class LocalCluster:
    def __init__(self, workdir: Path, nodes: int = 3, *, ports: Ports | None = None,
                 net: str = "127.0.1", stickiness: str = "source",
                 node_env: dict[str, str] | None = None, prometheus: bool = False,
                 ready_timeout: float = 60.0,
                 progress: Callable[[str], None] | None = None, redis: str = "single",
                 sentinel_timing: SentinelTiming | None = None):
        if not 1 <= nodes <= MAX_NODES:
            raise ClusterError(f"--nodes must be between 1 and {MAX_NODES}")
        if stickiness not in ("source", "cookie", "none"):
            raise ClusterError("stickiness must be source, cookie or none")
        if redis not in REDIS_MODES:
            raise ClusterError(f"--redis must be one of {', '.join(REDIS_MODES)}")
        self.dir = workdir.resolve()
        self.count = nodes
        self.prometheus = prometheus
        self.ready_timeout = ready_timeout
        self.state = State(ports=ports or Ports(), net=net, stickiness=stickiness,
                           node_env=dict(node_env or {}), redis=redis)
        self.sentinel_timing = sentinel_timing or SentinelTiming()
        self.procs = Processes(self.logs, self.dir)
        #: Told each step as it completes (``swarmdash cluster`` prints them).
        self.progress: Callable[[str], None] = progress or (lambda _message: None)

    # --- state -------------------------------------------------------------------------
    @classmethod
    def load(cls, workdir: Path) -> LocalCluster:
        path = workdir.resolve() / STATE_FILE
        if not path.is_file():
            raise ClusterError(f"no cluster in {workdir} (no {STATE_FILE}); run `cluster up`")
        cluster = cls(workdir)
        cluster.state = State.from_json(path.read_text())
        cluster.count = len(cluster.running_nodes())
        return cluster

    def save(self) -> None:
        tmp = self.dir / (STATE_FILE + ".tmp")
        tmp.write_text(self.state.to_json())
        tmp.replace(self.dir / STATE_FILE)  # the DNS responder reads it at any moment

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    http_url = LoopbackUrl("plain")
    https_url = LoopbackUrl("https", "https")
    stats_url = LoopbackUrl("stats")
    prometheus_url = LoopbackUrl("prometheus")

    @property
    def redis_url(self) -> str:
        """The REDIS_URL of the nodes: the server, or the sentinels that name the primary."""
        if self.sentinel:
            return self.topology.url
        return f"redis://127.0.0.1:{self.state.ports.redis}/0"

    @property
    def sentinel(self) -> bool:
        return self.state.redis == "sentinel"

    @property
    def topology(self) -> Topology:
        p = self.state.ports
        return Topology(self.dir / "redis", [p.redis + i for i in range(SENTINEL_SERVERS)],
                        [p.sentinel + i for i in range(SENTINEL_SERVERS)], self.sentinel_timing)

    @property
    def primary_url(self) -> str:
        """A plain redis:// URL of the current primary (what redis-cli and checks use)."""
        return self.topology.primary_url() if self.sentinel else self.redis_url

    @property
    def cert(self) -> Path:
        return self.dir / "certs" / "swarmdash.pem"

    def running_nodes(self) -> list[NodeInfo]:
        return [n for n in self.state.nodes if n.running]

    def node(self, name: str) -> NodeInfo:
        for n in self.state.nodes:
            if n.name == name:
                return n
        raise ClusterError(f"no node {name!r}; nodes: "
                           + ", ".join(n.name for n in self.state.nodes))

    def node_url(self, node: NodeInfo) -> str:
        return f"http://{node.host}:{self.state.ports.node}"

    def tail(self, name: str, lines: int = 30) -> str:
        return self.procs.tail(name, lines)

    # --- up ----------------------------------------------------------------------------
    def preflight(self) -> None:
        for binary in ("redis-server", "haproxy") + (("prometheus",) if self.prometheus else ()):
            if not (shutil.which(binary) or Path("/usr/sbin", binary).exists()):
                raise ClusterError(f"{binary} not found (Debian: apt-get install {binary})")
        p = self.state.ports
        wanted = [("127.0.0.1", p.plain), ("127.0.0.1", p.https), ("127.0.0.1", p.http),
                  ("127.0.0.1", p.stats), ("127.0.0.1", p.redis)]
        if self.sentinel:
            wanted += [("127.0.0.1", port) for t in (self.topology,)
                       for port in (*t.server_ports[1:], *t.sentinel_ports)]
        if self.prometheus:
            wanted.append(("127.0.0.1", p.prometheus))
        for host, port in wanted:
            if not port_free(host, port):
                raise ClusterError(f"{host}:{port} is in use (another cluster? `cluster down`)")
        if not port_free("127.0.0.1", p.dns, socket.SOCK_DGRAM):
            raise ClusterError(f"udp 127.0.0.1:{p.dns} is in use")

    def up(self) -> LocalCluster:
        if (self.dir / STATE_FILE).exists():
            raise ClusterError(f"a cluster is already recorded in {self.dir}; `cluster down` first")
        self.preflight()
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._make_cert()
            self._make_credentials()
            self._start_redis()
            self.save()
            self._start_dns()
            for _ in range(self.count):
                self.add_node(wait=False)
            for n in self.state.nodes:
                self._wait_node(n)
                self._publish(n)
            self._start_haproxy()
            self.progress("haproxy: every node UP")
            if self.prometheus:
                self._start_prometheus()
                self.progress(f"prometheus ready on {self.prometheus_url}")
        except BaseException:
            self.down()
            raise
        return self

    @property
    def node_env_file(self) -> Path:
        return self.dir / "node.env"

    @property
    def simulator_env_file(self) -> Path:
        return self.dir / "simulator.env"

    def _make_credentials(self) -> None:
        """A SECRET_KEY and an API key for the simulator, unless the cluster has its own.

        ``node.env`` (read by every node) gets the secret and the key's hash;
        ``simulator.env`` the key itself (``PUBLISH_API_KEY``, read by ``swarmdash simulate``).
        """
        from ..auth.apikeys import generate_key, key_hash

        if self.node_env_file.exists():
            return
        key = generate_key()
        for path, text in (
                (self.simulator_env_file, f"PUBLISH_API_KEY={key}\n"),
                (self.node_env_file,
                 "# Written by `swarmdash cluster up`: settings every node reads at start.\n"
                 f"SECRET_KEY={secrets.token_hex(32)}\n"
                 f"API_KEYS=simulator:{key_hash(key)}:*\n")):
            path.write_text(text)
            path.chmod(0o600)

    def viewer_headers(self) -> dict[str, str]:
        """A short viewer token for this cluster's own API calls (from the nodes' SECRET_KEY)."""
        from ..auth.tokens import issue_token
        from ..settings import read_env_file

        values = read_env_file(self.node_env_file) if self.node_env_file.is_file() else {}
        secret = {**values, **self.state.node_env}.get("SECRET_KEY", "")
        if not secret:
            return {}
        token = issue_token(secret, swarms=None, ttl=60, name="swarmdash-cluster")
        return {"Authorization": f"Bearer {token}"}

    def _make_cert(self) -> None:
        script = repo_root() / "haproxy" / "make-cert.sh"
        subprocess.run(["bash", str(script), str(self.cert.parent)], check=True,
                       capture_output=True)

    def _start_redis(self) -> None:
        if self.sentinel:
            self._start_sentinel_topology()
            return
        data = self.dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        port = self.state.ports.redis
        self.state.pids["redis"] = self.procs.spawn("redis", server_argv(port, data))
        wait_until(lambda: ping(port), 15, "redis-server")
        self.progress(f"redis-server ready on {self.redis_url}")

    def restart_redis(self) -> None:
        if self.sentinel:
            raise ClusterError("with --redis sentinel, restart one server: restart-redis-server "
                               "NAME (redis1, redis2, redis3), or move the primary: "
                               "redis-failover")
        self.procs.stop(self.state.pids.get("redis"), 10)
        self._start_redis()
        self.save()

    # --- Redis with Sentinel -------------------------------------------------------------
    def _start_sentinel_topology(self) -> None:
        topology = self.topology
        self.state.pids.update(topology.start(self.procs.spawn))
        self.save()
        wait_until(topology.ready, 30, "the Redis primary, replicas and sentinels")

    def redis_roles(self) -> dict[str, str]:
        """redis1..3 -> primary, replica or down, as Sentinel and the servers say."""
        topology = self.topology
        try:
            primary: int | None = topology.primary_port()
        except redis_lib.RedisError:
            primary = None
        roles = {}
        for i, port in enumerate(topology.server_ports):
            name = topology.server_name(i)
            if not pid_alive(self.state.pids.get(name)):
                roles[name] = "down"
            else:
                roles[name] = "primary" if port == primary else "replica"
        return roles

    def _redis_argv(self, name: str) -> tuple[list[str], int]:
        """(argv, port) of one Redis server (redis1..3) or sentinel (sentinel1..3)."""
        t = self.topology
        known = {t.server_name(i): (t.server_argv(i), port)
                 for i, port in enumerate(t.server_ports)}
        known |= {t.sentinel_name(i): (t.sentinel_argv(i), port)
                  for i, port in enumerate(t.sentinel_ports)}
        if not self.sentinel or name not in known:
            raise ClusterError(f"no Redis process {name!r}"
                               + (f"; processes: {', '.join(known)}" if self.sentinel else
                                  " (the cluster runs one redis-server: restart-redis)"))
        return known[name]

    def kill_redis_server(self, name: str) -> None:
        """SIGKILL one Redis server or sentinel (a crash); Sentinel promotes a replica if
        the server was the primary."""
        self._redis_argv(name)
        self.procs.kill(self.state.pids.pop(name, None))
        self.save()  # a dead pid is not kept: the system may give it to another process

    def restart_redis_server(self, name: str) -> None:
        """Start (or stop and start) one Redis server or sentinel; a server rejoins as a
        replica of the primary Sentinel names."""
        argv, port = self._redis_argv(name)
        self.procs.stop(self.state.pids.get(name), 10)
        self.state.pids[name] = self.procs.spawn(name, argv)
        self.save()
        wait_until(lambda: ping(port), 15, name)

    def redis_failover(self) -> int:
        """A switchover: the primary's writes paused, SENTINEL FAILOVER, the old primary
        unpaused once it is a replica; returns the new primary's port."""
        return self.topology.switchover(wait_until)

    def _dns_answers(self) -> bool:
        query = dns.message.make_query(NODES_FQDN, "A")
        response = dns.query.udp(query, "127.0.0.1", timeout=0.5, port=self.state.ports.dns)
        return response.id == query.id

    def _start_dns(self) -> None:
        self.state.pids["dns"] = self.procs.spawn("dns", [
            sys.executable, "-m", "swarmdash.cluster.dns", "--listen",
            f"127.0.0.1:{self.state.ports.dns}", "--name", NODES_FQDN,
            "--state", str(self.dir / STATE_FILE)])
        self.save()
        wait_until(self._dns_answers, 15, "the DNS responder")
        self.progress("DNS responder ready")

    def node_environment(self, node: NodeInfo) -> dict[str, str]:
        return {
            # Settings every node reads at start (e.g. SECRET_KEY, see the rotation runbook);
            # the values below and `--env` take precedence over the file.
            "SWARMDASH_ENV_FILE": str(self.node_env_file),
            "REDIS_URL": self.redis_url, "NODE_ID": node.name, "HOST": node.host,
            "PORT": str(self.state.ports.node), "PYTHONUNBUFFERED": "1",
            **self.state.node_env, **node.env,
        }

    def _start_node(self, node: NodeInfo) -> None:
        """Start a node's process; it enters DNS (and HAProxy) only once it is healthy."""
        node.running = False
        node.pid = self.procs.spawn(node.name, node_command(), self.node_environment(node))
        self.save()
        self.progress(f"{node.name} starting (pid {node.pid}) on {node.host}")

    def _publish(self, node: NodeInfo) -> None:
        node.running = True
        self.save()

    def _wait_node(self, node: NodeInfo) -> None:
        started = time.monotonic()
        wait_healthy(node.name, self.node_url(node), lambda: pid_alive(node.pid),
                     lambda: self.tail(node.name), self.ready_timeout)
        self.progress(f"{node.name} healthy after {time.monotonic() - started:.1f} s")

    def add_node(self, wait: bool = True, env: dict[str, str] | None = None) -> NodeInfo:
        """Scale out: one more node, in DNS at once; HAProxy routes to it once it is UP."""
        if len(self.running_nodes()) >= MAX_NODES:
            raise ClusterError(f"at most {MAX_NODES} nodes (HAProxy's node slots)")
        index = self.state.next_index
        host = f"{self.state.net}.{index}"
        if not port_free(host, self.state.ports.node):
            raise ClusterError(f"{host}:{self.state.ports.node} is in use")
        node = NodeInfo(name=f"node{index}", host=host, env=dict(env or {}))
        self.state.next_index += 1
        self.state.nodes.append(node)
        self._start_node(node)
        if wait:
            self._wait_node(node)
            self._publish(node)
            if "haproxy" in self.state.pids:
                self.wait_haproxy(lambda up: node.host in up)
        return node

    def remove_node(self, name: str) -> None:
        """Scale in: out of DNS, HAProxy drains it, then it stops (its clients move)."""
        node = self.node(name)
        node.running = False
        self.save()
        if "haproxy" in self.state.pids:
            self.progress(f"{name} out of DNS; waiting for HAProxy to take it out")
            self.wait_haproxy(lambda up: node.host not in up)
        self.progress(f"{name} stopping (its clients move to other nodes; up to "
                      f"{self.graceful_timeout + 5:g} s)")
        self.procs.stop(node.pid, self.graceful_timeout + 5)
        self.state.nodes.remove(node)
        self.save()

    def restart_node(self, name: str) -> None:
        """Stop a node (its clients reconnect elsewhere and resume) and start it again."""
        node = self.node(name)
        self.procs.stop(node.pid, self.graceful_timeout + 5)
        if "haproxy" in self.state.pids:
            self.wait_haproxy(lambda up: node.host not in up)
        self._start_node(node)
        self._wait_node(node)
        self._publish(node)
        if "haproxy" in self.state.pids:
            self.wait_haproxy(lambda up: node.host in up)

    def rolling_restart(self, on_step: Callable[[str], None] | None = None) -> None:
        for node in list(self.running_nodes()):
            self.restart_node(node.name)
            if on_step:
                on_step(node.name)

    def kill_node(self, name: str) -> None:
        """kill -9: a crash. The node stays in DNS; HAProxy's checks take it out."""
        self.procs.kill(self.node(name).pid)

    @property
    def graceful_timeout(self) -> float:
        return float(self.state.node_env.get("GRACEFUL_TIMEOUT", 10))

    # --- HAProxy -----------------------------------------------------------------------
    def haproxy_environment(self) -> dict[str, str]:
        p = self.state.ports
        return {
            "SWARMDASH_HAPROXY_MAXCONN": "8000",
            "SWARMDASH_HAPROXY_SOCKET": str(self.dir / "haproxy.sock"),
            "SWARMDASH_DNS": f"127.0.0.1:{p.dns}",
            "SWARMDASH_HTTP_BIND": f"127.0.0.1:{p.http}",
            "SWARMDASH_HTTPS_BIND": f"127.0.0.1:{p.https}",
            "SWARMDASH_PLAIN_BIND": f"127.0.0.1:{p.plain}",
            "SWARMDASH_STATS_BIND": f"127.0.0.1:{p.stats}",
            "SWARMDASH_TLS_CERT": str(self.cert),
            "SWARMDASH_STICKINESS": self.state.stickiness,
            "SWARMDASH_ACCEPT_PROXY": "false",
            "SWARMDASH_MAX_NODES": str(MAX_NODES),
            "SWARMDASH_NODES_FQDN": NODES_FQDN,
            "SWARMDASH_NODE_PORT": str(p.node),
        }

    def _start_haproxy(self) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        cfg = repo_root() / "haproxy" / "haproxy.cfg"
        self.state.pids["haproxy"] = self.procs.spawn(
            "haproxy", [binary, "-db", "-f", str(cfg)], self.haproxy_environment())
        self.save()
        self.wait_haproxy(lambda up: all(n.host in up for n in self.running_nodes()))

    def restart_haproxy(self) -> None:
        self.procs.stop(self.state.pids.get("haproxy"), 10)
        self._start_haproxy()

    def servers(self) -> list[dict[str, str]]:
        """HAProxy's view of the node slots that hold an address (stats CSV)."""
        text = requests.get(f"{self.stats_url}/stats;csv", timeout=2).text
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return [r for r in rows if r.get("svname", "").startswith("node")
                and r.get("addr") and not r["addr"].startswith("0.0.0.0")]

    def up_hosts(self, backend: str = "socketio") -> set[str]:
        return {r["addr"].rsplit(":", 1)[0] for r in self.servers()
                if r["pxname"] == backend and r["status"].startswith("UP")}

    def wait_haproxy(self, ready: Callable[[set[str]], bool], timeout: float = 30) -> None:
        def check() -> bool:
            pid = self.state.pids.get("haproxy")
            if not pid_alive(pid):
                raise ClusterError(f"haproxy exited:\n{self.tail('haproxy')}")
            return ready(self.up_hosts("socketio")) and ready(self.up_hosts("nodes"))

        try:
            wait_until(check, timeout, "HAProxy's node states", 0.1, fatal=(ClusterError,))
        except Timeout:
            raise ClusterError(f"HAProxy did not reach the expected node states:\n"
                               f"{self.tail('haproxy')}") from None

    # --- Prometheus --------------------------------------------------------------------
    def _start_prometheus(self) -> None:
        from .prometheus import render_local

        src = repo_root() / "infra" / "prometheus"
        config = self.dir / "prometheus.yml"
        config.write_text(render_local(src, http=self.state.ports.plain,
                                       stats=self.state.ports.stats))
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        self.state.pids["prometheus"] = self.procs.spawn("prometheus", [
            binary, f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.state.ports.prometheus}"])
        self.save()
        wait_until(lambda: requests.get(f"{self.prometheus_url}/-/ready", timeout=1).ok, 30,
                   "Prometheus")

    # --- status and down ---------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        try:
            servers = {r["addr"].rsplit(":", 1)[0]: r["status"] for r in self.servers()
                       if r["pxname"] == "socketio"}
        except requests.RequestException:
            servers = {}
        try:
            cluster = requests.get(f"{self.http_url}/api/v1/cluster", timeout=2,
                                   headers=self.viewer_headers()).json()
        except (requests.RequestException, ValueError):
            cluster = {"nodes": [], "totals": {}}
        live = {n["node"]: n for n in cluster.get("nodes", [])}
        nodes = []
        for n in self.state.nodes:
            rec = live.get(n.name, {})
            nodes.append({"node": n.name, "address": f"{n.host}:{self.state.ports.node}",
                          "pid": n.pid, "process": "running" if pid_alive(n.pid) else "dead",
                          "in_dns": n.running, "haproxy": servers.get(n.host, "-"),
                          "registry": "live" if rec else "-", "clients": rec.get("clients", 0),
                          "uptime": rec.get("uptime")})
        services = {name: ("running" if pid_alive(pid) else "dead")
                    for name, pid in self.state.pids.items()}
        if self.sentinel:
            services |= {f"{name}.role": role for name, role in self.redis_roles().items()}
        return {"dir": str(self.dir), "entrypoint": {"http": self.http_url,
                                                     "https": self.https_url,
                                                     "stats": f"{self.stats_url}/stats"},
                "services": services, "nodes": nodes, "totals": cluster.get("totals", {})}

    def down(self) -> None:
        for name in ("prometheus", "haproxy"):
            self._stop_service(name)
        for node in self.state.nodes:
            self.procs.stop(node.pid, self.graceful_timeout + 5)
            self.progress(f"{node.name} stopped")
        for name in ("dns", *REDIS_PROCESSES):
            self._stop_service(name)
        self.state.nodes.clear()
        (self.dir / STATE_FILE).unlink(missing_ok=True)
        (self.dir / "haproxy.sock").unlink(missing_ok=True)

    def _stop_service(self, name: str) -> None:
        pid = self.state.pids.pop(name, None)
        if pid is not None:
            self.procs.stop(pid, 10)
            self.progress(f"{name} stopped")
