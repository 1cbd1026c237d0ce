"""Deadlines of a connection, in isolation: pending connections are bounded and time out,
and a token's expiry ends the session unless it was refreshed (a fake server and clock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarmdash.auth.config import AuthConfig
from swarmdash.auth.socket import SocketGate
from swarmdash.auth.tokens import Viewer
from swarmdash.deadlines import Deadlines
from swarmdash.settings import load_settings


@dataclass
class FakeSocket:
    closed: bool = False
    closes: list[dict[str, Any]] = field(default_factory=list)

    def close(self, **kw: Any) -> None:
        self.closes.append(kw)
        self.closed = True


@dataclass
class FakeEio:
    sockets: dict[str, FakeSocket] = field(default_factory=dict)
    handlers: dict[str, Any] = field(default_factory=dict)

    def closed(self) -> list[str]:
        return [sid for sid, sock in self.sockets.items() if sock.closed]

    def on(self, name: str, handler: Any) -> None:
        self.handlers[name] = handler



@dataclass
class FakeManager:
    sessions: dict[str, str] = field(default_factory=dict)  # eio sid -> sid

    def sid_from_eio_sid(self, eio_sid: str, namespace: str) -> str | None:
        return self.sessions.get(eio_sid)


@dataclass
class FakeServer:
    eio: FakeEio = field(default_factory=FakeEio)
    manager: FakeManager = field(default_factory=FakeManager)
    sent: list[tuple[str, Any, str]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)

    def _handle_eio_connect(self, eio_sid: str, environ: Any) -> None:
        return None

    def emit(self, event: str, data: Any, to: str, **kw: Any) -> None:
        self.sent.append((event, data, to))

    def disconnect(self, sid: str, **kw: Any) -> None:
        self.ended.append(sid)


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def make(max_pending: int = 2, timeout: float = 5.0) -> tuple[Deadlines, FakeServer, Clock]:
    server, clock = FakeServer(), Clock()
    gate = SocketGate(AuthConfig.from_settings(load_settings(environ={}, env_file=None)))
    deadlines = Deadlines(server, gate, max_pending=max_pending, timeout=timeout,
                          sleep=lambda s: None, clock=clock)
    deadlines.install()
    return deadlines, server, clock


def open_eio(server: FakeServer, eio_sid: str) -> Any:
    server.eio.sockets[eio_sid] = FakeSocket()
    answer = server.eio.handlers["connect"](eio_sid, {})
    if answer is not None:  # refused: engineio drops the socket
        del server.eio.sockets[eio_sid]
    return answer


def test_pending_connections_beyond_the_limit_are_refused() -> None:
    _, server, _ = make(max_pending=2)
    assert open_eio(server, "e1") is None and open_eio(server, "e2") is None
    refused = open_eio(server, "e3")
    assert refused["error"] == "node_full" and "MAX_PENDING_CONNECTIONS=2" in refused["detail"]
    server.manager.sessions["e1"] = "s1"  # e1 completes its Socket.IO connect
    assert open_eio(server, "e4") is None, "an authenticated connection no longer counts"


def test_a_connection_without_a_session_is_closed_after_the_timeout() -> None:
    deadlines, server, clock = make(max_pending=10, timeout=5.0)
    open_eio(server, "quiet")
    open_eio(server, "client")
    server.manager.sessions["client"] = "s1"
    clock.now += 4.9
    assert deadlines.close_stale() == 0
    clock.now += 0.2
    assert deadlines.close_stale() == 1 and server.eio.closed() == ["quiet"]
    # without waiting for its queue: a peer that does not read cannot hold the loop
    assert server.eio.sockets["quiet"].closes == [{"wait": False, "abort": False}]
    # a session that ends (the client sent DISCONNECT) starts the clock again
    del server.manager.sessions["client"]
    deadlines.close_stale()
    clock.now += 5.1
    assert deadlines.close_stale() == 1 and server.eio.closed() == ["quiet", "client"]


def test_expiry_ends_the_session_unless_refreshed() -> None:
    deadlines, server, _ = make()
    gate = deadlines.gate
    gate.viewers["s1"] = Viewer("a", None, 1000.0)
    gate.viewers["s2"] = Viewer("b", None, 1000.0)
    deadlines.watch("s1")
    deadlines.watch("s2")
    gate.viewers["s2"] = Viewer("b", None, 5000.0)  # refreshed
    deadlines.watch("s2")
    assert deadlines.end_expired(now=999.0) == []
    assert deadlines.end_expired(now=1000.0) == ["s1"]
    assert server.sent == [("session_expired", {
        "error": "unauthorized", "reason": "expired",
        "detail": "the viewer token has expired: sign in again"}, "s1")]
    assert server.ended == ["s1"]
    assert deadlines.end_expired(now=4999.0) == []
    assert deadlines.end_expired(now=5000.0) == ["s2"]
