"""Dashboard clients on the official socket.io-client (tests/chaos/clients.mjs), a few
Node.js processes each holding many clients, driven over stdin/stdout."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from tests.helpers import ROOT

SCRIPT = Path(__file__).with_name("clients.mjs")
#: Source addresses 127.0.0.<FIRST_HOST + i>: `balance source` sees one address per client.
FIRST_HOST = 10
MAX_CLIENTS = 254 - FIRST_HOST
#: Delay before a refused subscribe is tried again (the protocol's "retry after a short delay").
SUBSCRIBE_RETRY_MS = 500


class ClientProcess:
    def __init__(self, url: str, clients: list[dict[str, Any]], log: Path,
                 reconnect_ms: tuple[int, int]):
        node = shutil.which("node")
        assert node, "Node.js is needed for the official client (tests/run.sh installs it)"
        assert (ROOT / "tests" / "js" / "node_modules" / "socket.io-client").is_dir(), \
            "run `npm ci --prefix tests/js` (tests/run.sh does)"
        config = {"url": url, "clients": clients, "channels": ["log", "metric"],
                  "reconnectDelay": reconnect_ms[0], "reconnectDelayMax": reconnect_ms[1],
                  "subscribeRetryMs": SUBSCRIBE_RETRY_MS}
        self.log = open(log, "ab")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen([node, str(SCRIPT), json.dumps(config)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1,
                                     env={**os.environ, "NODE_OPTIONS": ""})
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.replies.put(json.loads(line))

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"client process exited with {self.proc.returncode}")
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def ask(self, command: dict[str, Any], key: str, timeout: float = 30) -> Any:
        self.send(command)
        while True:
            reply = self.replies.get(timeout=timeout)
            if key in reply:
                return reply[key]

    def close(self) -> None:
        try:
            self.send({"cmd": "exit"})
            self.proc.wait(10)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


class ClientPool:
    """``count`` clients over ``processes`` Node.js processes; client i subscribes to
    ``swarms[i % len(swarms)]`` from 127.0.0.<FIRST_HOST + i>."""

    def __init__(self, url: str, swarms: list[str], count: int, processes: int, log_dir: Path,
                 reconnect_ms: tuple[int, int] = (1000, 5000)):
        assert count <= MAX_CLIENTS, f"at most {MAX_CLIENTS} clients (one loopback address each)"
        specs = [{"id": i, "source": f"127.0.0.{FIRST_HOST + i}", "swarm": swarms[i % len(swarms)]}
                 for i in range(count)]
        self.processes = [ClientProcess(url, specs[p::processes], log_dir / f"clients-{p}.log",
                                        reconnect_ms) for p in range(processes)]

    def report(self) -> list[dict[str, Any]]:
        for p in self.processes:
            p.send({"cmd": "report"})
        out: list[dict[str, Any]] = []
        for p in self.processes:
            while True:
                reply = p.replies.get(timeout=30)
                if "report" in reply:
                    out.extend(reply["report"])
                    break
        return sorted(out, key=lambda c: c["id"])

    def offline(self, ids: list[int], seconds: float) -> None:
        for p in self.processes:
            p.ask({"cmd": "offline", "ids": ids, "seconds": seconds}, "offline")

    def close(self) -> None:
        for p in self.processes:
            p.close()
