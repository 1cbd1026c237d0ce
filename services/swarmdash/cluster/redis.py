"""redis-server as real processes on loopback: one server, or a primary, replicas and
sentinels.

The local cluster (``swarmdash cluster up``, ``--redis sentinel``) and the tests run these;
docker-compose's ``sentinel`` profile runs the same topology in containers. Every server and
sentinel reads a config file of its own in ``<dir>``: Sentinel rewrites those
files when it moves the primary, so a restarted server comes back with the role Sentinel
gave it, not as a second primary.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from ..redisconn import sentinel_of
from ..settings import SENTINEL_SCHEME, SentinelUrl

#: The Sentinel service name of the local cluster and of docker-compose's profile.
SERVICE = "swarmdash"
#: How long a switchover pauses the old primary's writes at most (until it is demoted).
SWITCHOVER_PAUSE_MS = 30000


@dataclass(frozen=True)
class SentinelTiming:
    """How fast Sentinel acts: ``down_after_ms`` of silence makes a primary subjectively
    down; a failover that stalls is given up after ``failover_timeout_ms``."""

    down_after_ms: int = 2000
    failover_timeout_ms: int = 10000


def redis_binary() -> str:
    return shutil.which("redis-server") or "/usr/bin/redis-server"


def server_options(port: int, data: Path) -> list[tuple[str, str]]:
    """One server's settings: loopback only, its data in ``data``, the AOF on (a restart
    keeps the stream), no RDB snapshots."""
    return [("port", str(port)), ("bind", "127.0.0.1"), ("dir", str(data)),
            ("appendonly", "yes"), ("appendfsync", "everysec"), ("save", ""),
            ("daemonize", "no")]


def server_argv(port: int, data: Path) -> list[str]:
    """The command line of a single redis-server (no config file)."""
    return [redis_binary(), *(arg for name, value in server_options(port, data)
                              for arg in (f"--{name}", value))]


def ping(port: int) -> bool:
    """The server on ``port`` answers PING (False while it is away)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def server_conf(port: int, data: Path, replica_of: int | None = None) -> str:
    lines = [" ".join((name, value or '""')) for name, value in server_options(port, data)]
    lines += ["repl-diskless-sync yes", "repl-diskless-sync-delay 0"]
    if replica_of is not None:
        lines.append(f"replicaof 127.0.0.1 {replica_of}")
    return "\n".join(lines) + "\n"


def sentinel_conf(port: int, data: Path, primary: int, quorum: int,
                  timing: SentinelTiming) -> str:
    return "\n".join([
        f"port {port}", "bind 127.0.0.1", f"dir {data}", "daemonize no",
        f"sentinel monitor {SERVICE} 127.0.0.1 {primary} {quorum}",
        f"sentinel down-after-milliseconds {SERVICE} {timing.down_after_ms}",
        f"sentinel failover-timeout {SERVICE} {timing.failover_timeout_ms}",
        f"sentinel parallel-syncs {SERVICE} 1"]) + "\n"


def sentinel_url(sentinel_ports: list[int], db: int = 0, service: str = SERVICE) -> str:
    hosts = ",".join(f"127.0.0.1:{p}" for p in sentinel_ports)
    return f"{SENTINEL_SCHEME}://{hosts}/{db}/{service}"


@dataclass
class Topology:
    """Ports and files of one primary + replicas + sentinels; processes are started by the
    caller's ``spawn(name, argv) -> pid`` (the local cluster's or a test's)."""

    dir: Path
    server_ports: list[int]     # the first one starts as the primary
    sentinel_ports: list[int]
    timing: SentinelTiming = SentinelTiming()

    @property
    def quorum(self) -> int:
        return len(self.sentinel_ports) // 2 + 1

    @property
    def url(self) -> str:
        return sentinel_url(self.sentinel_ports)

    def server_name(self, i: int) -> str:
        return f"redis{i + 1}"

    def sentinel_name(self, i: int) -> str:
        return f"sentinel{i + 1}"

    def write_configs(self) -> None:
        primary = self.server_ports[0]
        for i, port in enumerate(self.server_ports):
            data = self.dir / self.server_name(i)
            data.mkdir(parents=True, exist_ok=True)
            conf = data / "redis.conf"
            if not conf.exists():  # Sentinel's rewrites survive a restart
                conf.write_text(server_conf(port, data, None if i == 0 else primary))
        for i, port in enumerate(self.sentinel_ports):
            data = self.dir / self.sentinel_name(i)
            data.mkdir(parents=True, exist_ok=True)
            conf = data / "sentinel.conf"
            if not conf.exists():
                conf.write_text(sentinel_conf(port, data, primary, self.quorum, self.timing))

    def server_argv(self, i: int) -> list[str]:
        return [redis_binary(), str(self.dir / self.server_name(i) / "redis.conf")]

    def sentinel_argv(self, i: int) -> list[str]:
        return [redis_binary(), str(self.dir / self.sentinel_name(i) / "sentinel.conf"),
                "--sentinel"]

    def start(self, spawn: Callable[[str, list[str]], int]) -> dict[str, int]:
        """Start every server, then every sentinel; return name -> pid (not yet ready)."""
        self.write_configs()
        pids = {self.server_name(i): spawn(self.server_name(i), self.server_argv(i))
                for i in range(len(self.server_ports))}
        pids |= {self.sentinel_name(i): spawn(self.sentinel_name(i), self.sentinel_argv(i))
                 for i in range(len(self.sentinel_ports))}
        return pids

    # --- what Sentinel says -----------------------------------------------------------
    def _sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1,
                           decode_responses=True)

    def primary_port(self) -> int:
        """The primary's port as the sentinels name it (MasterNotFoundError when none)."""
        parsed = SentinelUrl(tuple(("127.0.0.1", p) for p in self.sentinel_ports), SERVICE)
        sentinel = sentinel_of(parsed, 1.0)
        try:
            return int(sentinel.discover_master(SERVICE)[1])
        finally:
            sentinel.close()

    def primary_url(self) -> str:
        return f"redis://127.0.0.1:{self.primary_port()}/0"

    def server_index(self, port: int) -> int:
        return self.server_ports.index(port)

    def ready(self) -> bool:
        """Every sentinel names the same primary, which has every replica online, and the
        sentinels know each other (a failover can be authorized)."""
        primary = self.server_ports[0]
        for port in self.sentinel_ports:
            with self._sentinel(port) as s:
                state = s.sentinel_master(SERVICE)
                if int(state["port"]) != primary:
                    return False
                if int(state["num-other-sentinels"]) < len(self.sentinel_ports) - 1:
                    return False
                if int(state["num-slaves"]) < len(self.server_ports) - 1:
                    return False
        with redis.Redis(port=primary, socket_timeout=1, decode_responses=True) as r:
            info = r.info("replication")
            return int(info.get("connected_slaves", 0)) == len(self.server_ports) - 1

    def settled(self, primary: int) -> bool:
        """After a failover: every sentinel names ``primary`` and it is a writable primary
        with the surviving replicas online."""
        for port in self.sentinel_ports:
            try:
                with self._sentinel(port) as s:
                    if int(s.sentinel_master(SERVICE)["port"]) != primary:
                        return False
            except redis.ConnectionError:
                continue  # a sentinel that is down has no say
        with redis.Redis(port=primary, socket_timeout=1, decode_responses=True) as r:
            return str(r.info("replication").get("role")) == "master"

    def failover(self) -> None:
        """``SENTINEL FAILOVER``: Sentinel promotes a replica at once, without stopping the
        primary first (see :meth:`switchover` for the safe way)."""
        with self._sentinel(self.sentinel_ports[0]) as s:
            s.execute_command("SENTINEL", "FAILOVER", SERVICE)

    def role(self, port: int) -> str:
        with redis.Redis(port=port, socket_timeout=1, decode_responses=True) as r:
            return str(r.info("replication").get("role"))

    def switchover(self, wait: Callable[[Callable[[], object], float, str], object]) -> int:
        """Move the primary without losing an accepted write; returns the new primary's port.

        ``SENTINEL FAILOVER`` alone leaves the old primary writable (and its other replicas
        acknowledging) until Sentinel demotes it, seconds later: whatever it accepts then is
        dropped. So its writes are paused first (``CLIENT PAUSE WRITE``: clients wait, then
        time out and retry), the replicas are then level with it, and it is unpaused once it
        is a replica of the new primary.
        """
        old = self.primary_port()
        with redis.Redis(port=old, socket_timeout=1) as r:
            r.execute_command("CLIENT", "PAUSE", SWITCHOVER_PAUSE_MS, "WRITE")
        try:
            self.failover()
            new = int(str(wait(lambda: (p := self.primary_port()) != old and self.settled(p)
                               and p, 30, "Sentinel to promote a replica")))
            wait(lambda: self.role(old) == "slave", SWITCHOVER_PAUSE_MS / 1000,
                 "the old primary to become a replica")
        finally:
            with redis.Redis(port=old, socket_timeout=1) as r:
                r.execute_command("CLIENT", "UNPAUSE")
        return new
