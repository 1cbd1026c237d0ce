"""Background processes of the local cluster: start detached, stop gracefully, read logs.

A process outlives the command that started it (its own session, output to
``<logs>/<name>.log``); a later command stops it by pid. Children of this Python process are
also reaped, so none is left a zombie.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Timeout(RuntimeError):
    pass


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.05) -> Any:
    """Poll ``predicate`` (exceptions count as not yet) until truthy; :class:`Timeout` after."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise Timeout(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (an exited child not reaped yet) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def port_free(host: str, port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class Processes:
    def __init__(self, logs: Path, cwd: Path):
        self.logs, self.cwd = logs, cwd
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                                    cwd=self.cwd, start_new_session=True)
        self._children[proc.pid] = proc
        return proc.pid

    def reap(self, pid: int) -> None:
        proc = self._children.pop(pid, None)
        if proc is not None:
            proc.wait(5)

    def stop(self, pid: int | None, timeout: float, sig: int = signal.SIGTERM) -> None:
        """Signal the process group, wait up to ``timeout`` s, then SIGKILL it."""
        if not pid:
            return
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + timeout
            while pid_alive(pid) and time.monotonic() < deadline:
                proc = self._children.get(pid)
                if proc is not None and proc.poll() is not None:
                    break
                time.sleep(0.05)
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        self.reap(pid)

    def kill(self, pid: int | None) -> None:
        """SIGKILL at once: a crash."""
        if pid and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        if pid:
            self.reap(pid)

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            text = (self.logs / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
