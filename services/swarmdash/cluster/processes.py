"""Background processes of the local cluster and of the tests: start detached, stop
gracefully, read logs, wait for a condition.

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
               interval: float = 0.05, *, fatal: tuple[type[Exception], ...] = ()) -> Any:
    """Poll ``predicate`` until truthy and return its value; :class:`Timeout` after
    ``timeout`` s. Exceptions count as not yet, except those of ``fatal``, raised at once."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = predicate()
        except fatal:
            raise
        except Exception as exc:
            value, last = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f" (last error: {last!r})" if last else ""
            raise Timeout(f"timed out after {timeout:g} s waiting for {what}{detail}")
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


def stop_group(pid: int | None, timeout: float, sig: int = signal.SIGTERM) -> None:
    """Signal the process group of ``pid``, wait up to ``timeout`` s, then SIGKILL it."""
    if not pid_alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    kill_group(pid)


def kill_group(pid: int | None) -> None:
    """SIGKILL the process group of ``pid`` at once: a crash."""
    if pid_alive(pid):
        assert pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def tail(log: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file ("" when there is none)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Process:
    """One background process: its own session (a signal reaches its children too), its
    output in ``<logs>/<name>.log``; started again by :meth:`start` after a stop."""

    def __init__(self, name: str, argv: list[str], logs: Path,
                 env: dict[str, str] | None = None, cwd: Path | None = None):
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.log_path = logs / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {})}, cwd=self.cwd, start_new_session=True)
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.popen is not None
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, up to ``timeout`` s to exit, then SIGKILL; reaped either way."""
        if self.popen is not None:
            if self.alive:  # an exited child's pid may be another process's by now
                stop_group(self.popen.pid, timeout)
            self.popen.wait(5)

    def kill(self) -> None:
        if self.popen is not None:
            if self.alive:
                kill_group(self.popen.pid)
            self.popen.wait(5)

    def tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)


class Processes:
    """The local cluster's processes by pid: those it started in this command are
    :class:`Process` children (reaped when stopped); others are known by the pid recorded
    in the cluster's state file."""

    def __init__(self, logs: Path, cwd: Path):
        self.logs, self.cwd = logs, cwd
        self._children: dict[int, Process] = {}

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        proc = Process(name, argv, self.logs, env, self.cwd).start()
        assert proc.pid is not None
        self._children[proc.pid] = proc
        return proc.pid

    def stop(self, pid: int | None, timeout: float) -> None:
        """Signal the process group, wait up to ``timeout`` s, then SIGKILL it."""
        child = self._children.pop(pid, None) if pid else None
        if child is not None:
            child.stop(timeout)
        else:
            stop_group(pid, timeout)

    def kill(self, pid: int | None) -> None:
        """SIGKILL at once: a crash."""
        child = self._children.pop(pid, None) if pid else None
        if child is not None:
            child.kill()
        else:
            kill_group(pid)

    def tail(self, name: str, lines: int = 30) -> str:
        return tail(self.logs / f"{name}.log", lines)
