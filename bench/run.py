"""One benchmark run: every system in turn, the same ramp, the same load generator.

For each system: start 3 nodes behind HAProxy; connect the first step's clients while
nothing is published (idle memory per connection); start the publisher; then for each
step of the ramp add clients, let them settle and measure a window (events delivered,
latency histograms, CPU of every process, bytes through HAProxy). The ramp goes on past
the reference step while the system holds (p99 within batch window + 100 ms on every
channel, every client connected). Then the publisher stops, the clients drain, and their
completeness is read. The polling baseline runs on SwarmDash's own cluster, after its
websocket ramp, with as many clients as the reference step.
"""

from __future__ import annotations

import contextlib
import json
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from . import procstat
from .histogram import Histogram
from .loadgen import LoadGen, LoadGenError, Report
from .sizes import Size
from .systems import BENCH, REPO, SWARMDASH, BenchCluster, System

CHANNELS = ("agent", "task", "metric", "log")
#: p99 may exceed the channel's batch window by this much for a step to count as held.
SLACK_MS = 100.0
DRAIN_S = 2.5  # longer than the longest batch window (1 s), so open batches are delivered


@dataclass
class Options:
    size: Size
    out: Path
    loadgen_cpus: str | None = None  # taskset CPU list for the load generator


Progress = Callable[[str, float], None]  # (what is happening, units done)


def summary(h: Histogram | None) -> dict[str, float | None]:
    if h is None or not h.n:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    return {"p50": h.percentile(50), "p99": h.percentile(99), "max": h.max, "n": h.n}


def merged(report: Report, names: list[str]) -> Histogram | None:
    out: Histogram | None = None
    for name in names:
        h = report.hists.get(name)
        if h is not None:
            out = h if out is None else out.merge(h)
    return out


class Publisher:
    """The publishing process of a system (Python for SwarmDash and Flask-SocketIO, Node.js
    for the Node peer), stopped by SIGTERM; its last line is a JSON summary."""

    def __init__(self, system: System, cluster: BenchCluster, size: Size, duration: float,
                 log_dir: Path):
        workload = json.dumps(size.workload.to_dict())
        if system.kind == "node":
            argv = ["node", str(BENCH / "peers" / "node" / "publish.mjs"), cluster.redis_url,
                    system.engine, workload, str(duration)]
        else:
            sink = "fsio" if system.kind == "fsio" else "swarmdash"
            argv = [sys.executable, "-m", "bench.loadgen.event_source", "--sink", sink,
                    "--redis-url", cluster.redis_url, "--workload", workload,
                    "--duration", str(duration)]
        self.stderr = open(log_dir / "publisher.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     cwd=REPO, start_new_session=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first.startswith('{"started"'):
            self.stop()
            raise RuntimeError(f"publisher did not start: {first!r} (see {log_dir}/publisher.log)")

    def stop(self) -> dict[str, Any]:
        summary_: dict[str, Any] = {}
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        for line in out.splitlines():
            with contextlib.suppress(ValueError):
                summary_ = json.loads(line).get("summary", summary_)
        self.stderr.close()
        return summary_


class Run:
    def __init__(self, opts: Options, progress: Progress):
        self.o = opts
        self.size = opts.size
        self.progress = progress
        self.done = 0.0
        self.token: str | None = None

    def units(self, system: System) -> float:
        """Progress units of one system: start, each step, drain (+ polling for SwarmDash)."""
        return 2 + len(self.size.steps) + (1 if system is SWARMDASH else 0)

    def tick(self, what: str, units: float = 0.0) -> None:
        self.done += units
        self.progress(what, self.done)

    # --- one system ---------------------------------------------------------------------
    def system(self, system: System, *, with_polling: bool) -> dict[str, Any]:
        workdir = self.o.out / "clusters" / system.key
        if workdir.exists():
            import shutil

            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        start_units = self.done
        result: dict[str, Any] = {"system": system.key, "title": system.title}
        cluster = BenchCluster(workdir, system, maxconn=haproxy_maxconn(max(self.size.steps)))
        self.tick(f"{system.key}: starting 3 nodes + HAProxy + Redis")
        try:
            cluster.up()
            self.token = viewer_token(cluster) if system.kind == "swarmdash" else None
            result["auth"] = bool(self.token)
            self.tick(f"{system.key}: cluster up", 1)
            result.update(self._ramp(system, cluster, workdir))
            result["marked_down"] = marked_down(cluster)
            if with_polling:
                result["polling"] = self._polling(cluster, workdir)
        except (LoadGenError, RuntimeError, OSError, requests.RequestException) as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            cluster.down()
        self.done = start_units + self.units(system)
        self.tick(f"{system.key}: done")
        return result

    def _pids(self, cluster: BenchCluster, lg: LoadGen,
              publisher: Publisher) -> dict[str, list[int]]:
        roles = cluster.role_pids()
        roles["loadgen"] = lg.pids
        roles["publisher"] = [publisher.proc.pid]
        return {role: procstat.tree(pids) for role, pids in roles.items()}

    def _measure(self, cluster: BenchCluster, lg: LoadGen, publisher: Publisher,
                 label: str, hop: bool = False) -> tuple[Report, dict[str, Any]]:
        pids = self._pids(cluster, lg, publisher)
        hop_proc = None
        if hop:
            hop_proc = subprocess.Popen(
                [sys.executable, "-m", "bench.redis_hop", "--redis-url", cluster.redis_url,
                 "--duration", str(self.size.measure_s)],
                stdout=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
        lg.reset()
        cpu0 = {r: procstat.cpu_seconds(p) for r, p in pids.items()}
        t0 = time.monotonic()
        end = t0 + self.size.measure_s
        while time.monotonic() < end:
            self.tick(f"{label} ({end - time.monotonic():.0f} s)")
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))
        report = lg.report()
        window = time.monotonic() - t0
        cpu = {r: procstat.cpu_seconds(p) - cpu0[r] for r, p in pids.items()}
        wire = report.counters.get("wire_bytes", 0)  # TCP payload of the clients' sockets
        delivered = report.counters.get("events", 0)
        m: dict[str, Any] = {
            "window_s": round(window, 3), "delivered": delivered,
            "delivered_per_s": delivered / window, "messages_per_s":
                report.counters.get("messages", 0) / window,
            "cpu_s": cpu, "cpu_pct": {r: 100 * c / window for r, c in cpu.items()},
            "cpu_s_per_million": {r: (c / delivered * 1e6 if delivered else None)
                                  for r, c in cpu.items()},
            "wire_bytes": wire, "bytes_per_event": wire / delivered if delivered else None,
            "loadgen_loop_delay_p99_ms": report.loop_delay_p99_ms,
            "connected": report.connected, "errors": report.counters.get("errors", 0),
            "disconnects": report.counters.get("disconnects", 0),
            "latency": {c: summary(report.hists.get(f"{c}:incl")) for c in (*CHANNELS, "alert")},
            "batched_incl": summary(merged(report, [f"{c}:incl" for c in CHANNELS])),
            "batched_flush": summary(merged(report, [f"{c}:flush" for c in CHANNELS])),
            "all_incl": summary(merged(report, [f"{c}:incl" for c in (*CHANNELS, "alert")])),
            "counters": report.counters,
        }
        if "poll:rtt" in report.hists:
            m["poll_rtt"] = summary(report.hists["poll:rtt"])
        if hop_proc is not None:
            out, _ = hop_proc.communicate(timeout=30)
            with contextlib.suppress(ValueError, IndexError):
                m["redis_hop"] = json.loads(out.strip().splitlines()[-1])
        return report, m

    def _held(self, system: System, m: dict[str, Any], clients: int) -> bool:
        if m["connected"] < clients or m["disconnects"]:
            return False
        for channel, window in system.windows.items():
            p99 = m["latency"][channel]["p99"]
            if p99 is None or p99 > window + SLACK_MS:
                return False
        alert = m["latency"]["alert"]["p99"]
        return alert is not None and alert <= SLACK_MS

    def _ramp(self, system: System, cluster: BenchCluster, workdir: Path) -> dict[str, Any]:
        s = self.size
        w = s.workload
        lg = LoadGen(s.loadgen_processes, s.sources, workdir, self.o.loadgen_cpus)
        publisher: Publisher | None = None
        out: dict[str, Any] = {"steps": []}
        try:
            # Idle memory: a few clients first (so one-off allocations of the first
            # connections are not counted), then the rest of the first step.
            first = s.steps[0]
            warm = max(1, first // 10)
            self.tick(f"{system.key}: connecting {first} idle clients")
            ok, failed = lg.connect(warm, cluster.http_url, swarms=w.swarms,
                                    all_every=s.all_every, rate=s.connect_rate, auth=self._auth())
            time.sleep(s.settle_s)
            rss0 = procstat.rss_bytes(procstat.tree(cluster.role_pids()["nodes"]))
            more, bad = lg.connect(first - warm, cluster.http_url, swarms=w.swarms,
                                   all_every=s.all_every, rate=s.connect_rate, auth=self._auth())
            time.sleep(s.settle_s)
            rss1 = procstat.rss_bytes(procstat.tree(cluster.role_pids()["nodes"]))
            out["idle"] = {"clients": more, "failed": bad, "rss_before": rss0,
                           "rss_after": rss1,
                           "bytes_per_connection": (rss1 - rss0) / more if more else None}
            ok, failed = ok + more, failed + bad
            per_step = s.settle_s + s.measure_s + max(s.steps) / s.connect_rate + 30
            publisher = Publisher(system, cluster, s, per_step * len(s.steps) + 60, workdir)
            clients = ok
            for target in s.steps:
                if target > clients:
                    self.tick(f"{system.key}: connecting to {target} clients")
                    more, bad = lg.connect(target - clients, cluster.http_url, swarms=w.swarms,
                                           all_every=s.all_every, rate=s.connect_rate,
                                           auth=self._auth())
                    clients += more
                    failed += bad
                time.sleep(s.settle_s)
                _, m = self._measure(cluster, lg, publisher,
                                     f"{system.key}: {target} clients",
                                     hop=system.kind == "swarmdash" and target == s.reference)
                m["clients"] = target
                m["connect_failures"] = failed
                m["held"] = self._held(system, m, target)
                out["steps"].append(m)
                self.tick(f"{system.key}: {target} clients measured", 1)
                if not m["held"] and target >= s.reference:
                    break
            out["published"] = publisher.stop()
            publisher = None
            self.tick(f"{system.key}: draining")
            time.sleep(DRAIN_S)
            out["completeness"] = lg.report().completeness
            self.tick(f"{system.key}: drained", 1)
        finally:
            if publisher is not None:
                publisher.stop()
            lg.close()
        return out

    def _polling(self, cluster: BenchCluster, workdir: Path) -> dict[str, Any]:
        """The old dashboard: every client polls GET /api/v1/events every second."""
        s = self.size
        w = s.workload
        log_dir = workdir / "polling"
        log_dir.mkdir(exist_ok=True)
        lg = LoadGen(s.loadgen_processes, s.sources, log_dir, self.o.loadgen_cpus)
        publisher: Publisher | None = None
        try:
            publisher = Publisher(SWARMDASH, cluster, s, s.settle_s * 3 + s.measure_s + 60,
                                  log_dir)
            lg.poll(s.reference, cluster.http_url, swarms=w.swarms, all_every=s.all_every,
                    interval_ms=1000, headers=self._headers())
            time.sleep(max(s.settle_s, 3.0))  # every client has loaded its snapshot
            _, m = self._measure(cluster, lg, publisher,
                                 f"polling: {s.reference} clients")
            m["clients"] = s.reference
            m["polls_per_s"] = m["messages_per_s"]
            out: dict[str, Any] = {"steps": [m]}
            out["published"] = publisher.stop()
            publisher = None
            time.sleep(DRAIN_S)
            out["completeness"] = lg.report().completeness
            self.tick("polling: done", 1)
            return out
        finally:
            if publisher is not None:
                publisher.stop()
            lg.close()

    def _auth(self) -> dict[str, Any] | None:
        return {"token": self.token} if self.token else None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def haproxy_maxconn(clients: int) -> int:
    """Room for every client (polling clients may hold two connections), within what the
    open-files limit lets HAProxy have (two descriptors per proxied connection)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return min(clients * 2 + 1000, (nofile - 500) // 2)


def marked_down(cluster: BenchCluster) -> int:
    """How often HAProxy's health checks took a node out (its websockets are then closed)."""
    try:
        text = (cluster.logs / "haproxy.log").read_text(errors="replace")
    except OSError:
        return 0
    return len(re.findall(r"Server socketio/\S+ is DOWN", text))


def viewer_token(cluster: BenchCluster) -> str | None:
    """An all-swarms viewer token signed with the cluster's SECRET_KEY (None without auth)."""
    try:
        from swarmdash.auth import issue_token
        from swarmdash.settings import read_env_file
    except ImportError:  # a version without viewer tokens
        return None
    env_file = cluster.dir / "node.env"
    values = read_env_file(env_file) if env_file.is_file() else {}
    values.update(cluster.state.node_env)
    if values.get("AUTH_DISABLED", "").lower() in ("1", "true", "yes", "on"):
        return None
    secret = values.get("SECRET_KEY")
    return issue_token(secret, swarms=None, ttl=24 * 3600, name="bench") if secret else None
