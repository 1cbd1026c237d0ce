"""The load generator. The viewers' side, here: several Node.js processes of
``clients.mjs`` (this folder). The agents' side is :mod:`bench.loadgen.event_source`, a
process that publishes the workload's events.

Clients connect from many loopback source addresses (127.0.0.2, 127.0.0.3, …) so that
HAProxy's ``balance source`` spreads them over the nodes, and are split evenly between the
processes. Optionally each process is pinned to a CPU with ``taskset``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..histogram import Histogram

LOADGEN = Path(__file__).resolve().parent


class LoadGenError(RuntimeError):
    pass


@dataclass
class Report:
    counters: dict[str, float]
    connected: int
    hists: dict[str, Histogram]
    completeness: dict[str, int]
    loop_delay_p99_ms: float


class LoadGen:
    def __init__(self, processes: int, sources: int, log_dir: Path, cpus: str | None = None):
        self.sources = [f"127.0.0.{2 + i}" for i in range(sources)]
        self.procs: list[subprocess.Popen[str]] = []
        self.replies: list[queue.Queue[dict[str, Any]]] = []
        self.next_index = 0
        prefix = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
        for i in range(processes):
            log = open(log_dir / f"loadgen-{i}.log", "ab")  # noqa: SIM115 - lives with the process
            proc = subprocess.Popen([*prefix, "node", str(LOADGEN / "clients.mjs")],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                    text=True, cwd=LOADGEN, start_new_session=True)
            self.procs.append(proc)
            q: queue.Queue[dict[str, Any]] = queue.Queue()
            self.replies.append(q)
            threading.Thread(target=self._read, args=(proc, q), daemon=True).start()

    @staticmethod
    def _read(proc: subprocess.Popen[str], q: queue.Queue[dict[str, Any]]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                q.put(json.loads(line))
            except ValueError:
                continue
        q.put({"event": "exit"})

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def _send(self, i: int, cmd: dict[str, Any]) -> None:
        proc = self.procs[i]
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(cmd) + "\n")
        proc.stdin.flush()

    def _wait(self, i: int, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.replies[i].get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise LoadGenError(
                    f"load generator {i}: no {event!r} within {timeout:g} s") from None
            if msg.get("event") == "exit":
                raise LoadGenError(f"load generator {i} exited")
            if msg.get("event") == event:
                return msg

    def _split(self, n: int) -> list[int]:
        k = len(self.procs)
        return [n // k + (1 if i < n % k else 0) for i in range(k)]

    def connect(self, n: int, url: str, *, swarms: int, all_every: int, rate: float,
                auth: dict[str, Any] | None = None, timeout: float = 300) -> tuple[int, int]:
        """Open ``n`` more subscribed websocket clients; return (acked, failed)."""
        shares = self._split(n)
        for i, share in enumerate(shares):
            if share:
                self._send(i, {"cmd": "connect", "url": url, "n": share, "first": self.next_index,
                               "sources": self.sources, "swarms": swarms, "all_every": all_every,
                               "rate": max(1.0, rate / len(self.procs)), "auth": auth})
                self.next_index += share
        ok = failed = 0
        for i, share in enumerate(shares):
            if share:
                reply = self._wait(i, "connected", timeout)
                ok += reply["ok"]
                failed += reply["failed"]
        return ok, failed

    def poll(self, n: int, url: str, *, swarms: int, all_every: int, interval_ms: int,
             headers: dict[str, str] | None = None) -> None:
        for i, share in enumerate(self._split(n)):
            if share:
                self._send(i, {"cmd": "poll", "url": url, "n": share, "first": self.next_index,
                               "sources": self.sources, "swarms": swarms, "all_every": all_every,
                               "interval_ms": interval_ms, "headers": headers or {}})
                self.next_index += share
                self._wait(i, "polling", 30)

    def reset(self) -> None:
        for i in range(len(self.procs)):
            self._send(i, {"cmd": "reset"})
        for i in range(len(self.procs)):
            self._wait(i, "reset", 60)

    def report(self) -> Report:
        for i in range(len(self.procs)):
            self._send(i, {"cmd": "report"})
        counters: dict[str, float] = {}
        hists: dict[str, Histogram] = {}
        complete: dict[str, int] = {}
        connected, delay = 0, 0.0
        for i in range(len(self.procs)):
            r = self._wait(i, "report", 120)
            for k, v in r["counters"].items():
                counters[k] = counters.get(k, 0) + v
            for name, h in r["hists"].items():
                hists.setdefault(name, Histogram()).add_sparse(h["counts"], h["max"])
            for k, v in r["completeness"].items():
                complete[k] = complete.get(k, 0) + v
            connected += r["connected"]
            delay = max(delay, r["loop_delay_p99_ms"])
        return Report(counters, connected, hists, complete, delay)

    def close(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    self._send(i, {"cmd": "close"})
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
