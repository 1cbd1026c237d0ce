"""Deadlines of a connection: the Socket.IO connect, then the viewer token's expiry.

An Engine.IO connection holds one of the server's ``WORKER_CONNECTIONS`` whether or not it
ever sends the Socket.IO CONNECT. Until it has (with a valid token) it is *pending*: at
most ``MAX_PENDING_CONNECTIONS`` of them at once (beyond it the Engine.IO handshake is
refused with 401), each closed ``HANDSHAKE_TIMEOUT`` seconds after it was first seen
without a Socket.IO session. So authenticated clients (``MAX_CLIENTS_PER_NODE``) and
pending connections together stay below ``WORKER_CONNECTIONS``, and ``/health`` answers
on a full node.

A connected viewer's token expires: at that moment the client gets ``session_expired``
and is disconnected, so nothing streams on an expired token. A client that sends
``refresh_token`` with a new token before then keeps its connection and subscriptions.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from typing import Any

from . import metrics
from .auth.socket import SocketGate
from .loops import every

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 0.5  # how often deadlines are looked at (well under HANDSHAKE_TIMEOUT)
EXPIRED = {"error": "unauthorized", "reason": "expired",
           "detail": "the viewer token has expired: sign in again"}


class Deadlines:
    def __init__(self, server: Any, gate: SocketGate, *, max_pending: int, timeout: float,
                 sleep: Callable[[float], None], clock: Callable[[], float] = time.monotonic):
        self.server = server  # python-socketio Server (its .eio is the engineio.Server)
        self.gate = gate
        self.max_pending = max_pending
        self.timeout = timeout
        self.sleep = sleep
        self.clock = clock
        self.pending: dict[str, float] = {}  # eio sid -> when first seen without a session
        self._expiries: list[tuple[float, str]] = []  # (token expiry, sid), a heap
        self.running = False

    # --- pending connections ----------------------------------------------------------
    def install(self) -> None:
        """Count every new Engine.IO connection as pending (refused beyond the limit)."""
        handle = self.server._handle_eio_connect

        def on_eio_connect(eio_sid: str, environ: Any) -> Any:
            self._prune()
            if len(self.pending) >= self.max_pending:
                metrics.CONNECTS_REFUSED.labels(reason="too_many_pending").inc()
                return {"error": "node_full",
                        "detail": f"this node holds MAX_PENDING_CONNECTIONS="
                                  f"{self.max_pending} connections that have not connected "
                                  f"yet; retry later"}
            self.pending[eio_sid] = self.clock()
            return handle(eio_sid, environ)

        self.server.eio.on("connect", on_eio_connect)

    def _has_session(self, eio_sid: str) -> bool:
        return self.server.manager.sid_from_eio_sid(eio_sid, "/") is not None

    def _prune(self) -> None:
        sockets = self.server.eio.sockets
        for eio_sid in list(self.pending):
            if eio_sid not in sockets or self._has_session(eio_sid):
                del self.pending[eio_sid]

    def close_stale(self) -> int:
        """Close every connection without a Socket.IO session past HANDSHAKE_TIMEOUT."""
        now = self.clock()
        for eio_sid, sock in list(self.server.eio.sockets.items()):
            # also one whose session ended (a client-side DISCONNECT) but that stays open
            if not sock.closed and not self._has_session(eio_sid):
                self.pending.setdefault(eio_sid, now)
        self._prune()
        stale = [s for s, since in self.pending.items() if now - since >= self.timeout]
        for eio_sid in stale:
            del self.pending[eio_sid]
            sock = self.server.eio.sockets.get(eio_sid)
            if sock is None:
                continue
            log.info("closing connection %s: no Socket.IO connect within HANDSHAKE_TIMEOUT=%g s",
                     eio_sid, self.timeout)
            metrics.HANDSHAKE_TIMEOUTS.inc()
            # not wait: a peer that does not read would hold this loop until it did
            sock.close(wait=False, abort=False)
        metrics.PENDING_CONNECTIONS.set(len(self.pending))
        return len(stale)

    # --- token expiry -------------------------------------------------------------------
    def watch(self, sid: str) -> None:
        """Call after ``gate`` admitted or refreshed ``sid``: its token's expiry counts."""
        viewer = self.gate.viewers.get(sid)
        if viewer is not None and viewer.expires is not None:
            heapq.heappush(self._expiries, (viewer.expires, sid))

    def end_expired(self, now: float | None = None) -> list[str]:
        """Disconnect every client whose current token has expired, telling it why."""
        now = time.time() if now is None else now
        ended: list[str] = []
        while self._expiries and self._expiries[0][0] <= now:
            _, sid = heapq.heappop(self._expiries)
            viewer = self.gate.viewers.get(sid)
            if viewer is None or not viewer.expired(now) or sid in ended:
                continue  # gone, or refreshed since (a later entry holds its new expiry)
            metrics.SESSIONS_EXPIRED.inc()
            self.server.emit("session_expired", EXPIRED, to=sid, namespace="/",
                             ignore_queue=True)
            self.server.disconnect(sid, namespace="/", ignore_queue=True)
            ended.append(sid)
        return ended

    # --- the loop -------------------------------------------------------------------------
    def check(self) -> None:
        self.close_stale()
        self.end_expired()

    def run(self) -> None:
        self.running = True
        every(CHECK_INTERVAL_S, self.check, sleep=self.sleep, running=lambda: self.running,
              what="connection deadline check")
