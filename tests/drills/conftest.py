"""One local cluster for every drill, started and driven with the `swarmdash cluster` command.

The runbooks in ``docs/runbooks/`` give their commands for a cluster on the default ports
(``--dir .swarmdash-cluster``, HAProxy on 127.0.0.1:8050 and :8404, nodes on 127.0.1.N:8050,
redis-server on 6390). :meth:`Drill.sh` runs such a command verbatim after pointing those
addresses at this cluster's free ports, so the drills run what the runbooks print.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from swarmdash.cluster.local import LocalCluster, Ports
from tests.helpers import DashClient, metric_value, session_from, wait_for
from tests.local_cluster import NODE_ENV, client_from, cluster_ports, random_net

BIN = Path(sys.executable).parent
CHANNELS = ["agent", "log"]
#: How the runbooks call the API: with the viewer token of docs/runbooks/README.md.
TOKEN_HEADER = '-H "Authorization: Bearer $SWARMDASH_TOKEN"'
#: docs/runbooks/README.md's command that makes that token, from the cluster's secret.
TOKEN_EXPORT = ("SWARMDASH_ENV_FILE=.swarmdash-cluster/node.env swarmdash token --all-swarms "
                "--ttl 1h --name operator 2>/dev/null")


@dataclass
class Drill:
    dir: Path
    ports: Ports
    net: str
    token: str = ""  # SWARMDASH_TOKEN of the runbooks' commands

    # --- the runbooks' commands ---------------------------------------------------------
    def translate(self, command: str) -> str:
        """A runbook command (default ports) for this cluster's ports and addresses."""
        p = self.ports
        command = re.sub(r"127\.0\.1\.([^:\s/]+):8050", rf"{self.net}.\1:{p.node}", command)
        for old, new in (("127.0.0.1:8050", f"127.0.0.1:{p.plain}"),
                         ("127.0.0.1:8404", f"127.0.0.1:{p.stats}"),
                         ("127.0.0.1:8443", f"127.0.0.1:{p.https}"),
                         ("redis-cli -p 6390", f"redis-cli -p {p.redis}"),
                         (".swarmdash-cluster", str(self.dir))):
            command = command.replace(old, new)
        return command

    def sh(self, command: str, timeout: float = 60,
           check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a runbook command with bash (the venv's `swarmdash` first on PATH)."""
        env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
               "SWARMDASH_TOKEN": self.token}
        done = subprocess.run(["bash", "-o", "pipefail", "-c", self.translate(command)],
                              capture_output=True, text=True, timeout=timeout, env=env)
        if check:
            assert done.returncode == 0, (
                f"{command!r} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`swarmdash cluster --dir <dir> ARGS`; asserts exit status 0."""
        return self.sh(" ".join(["swarmdash cluster --dir .swarmdash-cluster", *args]),
                       timeout=timeout)

    def cli_background(self, *args: str) -> Background:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen([str(BIN / "swarmdash"), "cluster", "--dir", str(self.dir),
                                 *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env)
        return Background(proc)

    # --- the cluster as it is now ---------------------------------------------------------
    def cluster(self) -> LocalCluster:
        return LocalCluster.load(self.dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.plain}"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.stats}"

    def node_urls(self) -> dict[str, str]:
        c = self.cluster()
        return {n.name: c.node_url(n) for n in c.running_nodes()}

    def live_nodes(self) -> list[str]:
        body = requests.get(f"{self.url}/api/v1/cluster", timeout=5).json()
        return sorted(n["node"] for n in body["nodes"])

    def metric_sum(self, sample: str) -> float:
        return sum(metric_value(u, sample) for u in self.node_urls().values())

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.cli("status", "--json").stdout)
        return out

    def healthy(self, count: int = 3) -> bool:
        """Every node running, UP in HAProxy and live in the registry, ``count`` of them."""
        cluster = self.cluster()
        nodes = cluster.running_nodes()
        up = cluster.up_hosts("socketio")
        return (len(nodes) == count and all(n.host in up for n in nodes)
                and self.live_nodes() == sorted(n.name for n in nodes))


class Background:
    """A `swarmdash cluster` command running while the test drives clients; output timed."""
    took: float = 0.0  # the command's duration, once finished

    def __init__(self, proc: subprocess.Popen[str]):
        self.proc = proc
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic() - self.started, line.rstrip()))

    def done(self) -> bool:
        return self.proc.poll() is not None

    def finish(self, timeout: float = 120) -> float:
        """Wait for the exit (status 0 asserted); return the command's duration."""
        self.proc.wait(timeout)
        self.reader.join(5)
        assert self.proc.returncode == 0, "\n".join(line for _, line in self.lines)
        self.took = time.monotonic() - self.started
        return self.took


def servers_state(text: str) -> dict[str, str]:
    """``show servers state`` of HAProxy's runtime API: node address -> srv_op_state
    (0 stopped, 2 running) for the slots that hold an address."""
    rows = [line.split() for line in text.splitlines() if not line.startswith("#")]
    return {r[4]: r[5] for r in rows if len(r) > 5 and r[4] != "-"}


def landing_node(url: str, source: str) -> str:
    """The node HAProxy gives a Socket.IO session from ``source`` (raw Engine.IO polling)."""
    session = session_from(source)
    base = f"{url}/socket.io/"
    first = session.get(base, params={"EIO": "4", "transport": "polling"}, timeout=5)
    assert first.status_code == 200 and first.text.startswith("0{"), first.text
    params = {"EIO": "4", "transport": "polling", "sid": json.loads(first.text[1:])["sid"]}
    assert session.post(base, params=params, data="40", timeout=5).ok
    try:
        for _ in range(5):
            for packet in session.get(base, params=params, timeout=5).text.split("\x1e"):
                if packet.startswith("42"):
                    name, data = json.loads(packet[2:])
                    if name == "connection_established":
                        return str(data["node"])
        raise AssertionError("no connection_established from the node")
    finally:
        session.post(base, params=params, data="1", timeout=5)  # Engine.IO close


@dataclass
class Viewer:
    """A dashboard on one source address: when its connection drops it reconnects through
    HAProxy and subscribes with the cursor of the last message it received."""

    url: str
    source: str
    swarm: str
    sessions: list[DashClient] = field(default_factory=list)
    lost_at: float | None = None
    resume_times: list[float] = field(default_factory=list)
    gaps: int = 0

    def connect(self) -> bool:
        since = self.sessions[-1].cursor if self.sessions else None
        client = client_from(self.url, self.source)
        try:
            client.connect()
            request: dict[str, Any] = {"swarm": self.swarm, "channels": CHANNELS}
            if since:
                request["since"] = since
            ack = client.subscribe(**request)
        except Exception:
            client.close()
            return False
        if not ack.get("ok"):  # e.g. "unavailable" while Redis is away: try again
            client.close()
            return False
        self.gaps += bool(ack.get("gap"))
        self.sessions.append(client)
        return True

    @property
    def node(self) -> str:
        return str(self.sessions[-1].events("connection_established")[0][1]["node"])

    @property
    def connected(self) -> bool:
        return bool(self.sessions) and self.sessions[-1].sio.connected

    def ensure(self) -> bool:
        """Reconnect if the connection dropped (one attempt); True when connected."""
        if self.connected:
            return True
        if self.lost_at is None:
            self.lost_at = time.monotonic()
        if self.connect():
            self.resume_times.append(time.monotonic() - self.lost_at)
            self.lost_at = None
            return True
        return False

    def merged(self) -> DashClient:
        merged = DashClient(self.url)
        merged.received = [m for s in self.sessions for m in s.received]
        return merged

    def ids(self) -> list[str]:
        return [i for s in self.sessions for i in s.delivered_ids()]

    def has_all(self, expected: list[str]) -> Callable[[], bool]:
        """A condition for wait_for: every id of ``expected`` delivered to this viewer."""
        return lambda: set(expected) <= set(self.ids())

    def close(self) -> None:
        for s in self.sessions:
            s.close()


def ensure_all(viewers: list[Viewer]) -> bool:
    return all([v.ensure() for v in viewers])  # a list: try every viewer on each round


def through(drill: Drill, viewers: list[Viewer], accepted: Callable[[], int], what: str,
            *args: str, timeout: float) -> Background:
    """Run `swarmdash cluster ARGS` while a feed publishes and every viewer keeps
    reconnecting; return it finished, once every viewer is back and 20 more events were
    accepted (``accepted()``: how many so far)."""
    wait_for(lambda: all(len(v.ids()) >= 10 for v in viewers), 15,
             message="events on every viewer")
    background = drill.cli_background(*args)
    wait_for(lambda: ensure_all(viewers) and background.done(), timeout, interval=0.05,
             message=f"{what} while viewers reconnect")
    background.finish()
    wait_for(lambda: ensure_all(viewers), 30, interval=0.05, message="every viewer back")
    target = accepted() + 20
    wait_for(lambda: accepted() >= target, 15, message=f"events after {what}")
    return background


@pytest.fixture(scope="package")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    d = Drill(tmp_path_factory.mktemp("drill") / "cluster", cluster_ports(), random_net())
    p = d.ports
    env = [a for k, v in NODE_ENV.items() for a in ("--env", f"{k}={v}")]
    args = ["up", "--nodes", "3", "--net", d.net, "--port", str(p.plain),
            "--https-port", str(p.https), "--http-port", str(p.http),
            "--stats-port", str(p.stats), "--dns-port", str(p.dns),
            "--redis-port", str(p.redis), "--node-port", str(p.node), *env]
    try:
        up = subprocess.run([str(BIN / "swarmdash"), "cluster", "--dir", str(d.dir), *args],
                            capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stderr + up.stdout
        d.token = d.sh(TOKEN_EXPORT).stdout.strip()
        # The token is valid for this cluster's secret (the drills' nodes run with auth off,
        # so the checks below would pass without it; `token --check` proves it is right).
        check = d.sh(f"SWARMDASH_ENV_FILE=.swarmdash-cluster/node.env swarmdash token "
                     f"--check {d.token}")
        assert '"valid": true' in check.stdout, check.stdout
        yield d
    finally:
        down = subprocess.run([str(BIN / "swarmdash"), "cluster", "--dir", str(d.dir), "down"],
                              capture_output=True, text=True, timeout=120)
        if down.returncode != 0 and (d.dir / "cluster.json").exists():
            LocalCluster.load(d.dir).down()


@pytest.fixture
def viewers() -> Iterator[list[Viewer]]:
    opened: list[Viewer] = []
    yield opened
    for v in opened:
        v.close()


def wait_healthy(drill: Drill, count: int = 3) -> None:
    wait_for(lambda: drill.healthy(count), 30, interval=0.2,
             message=f"{count} nodes running, UP in HAProxy and live in the registry")
