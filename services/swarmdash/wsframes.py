"""Whole websocket messages under load (simple-websocket 1.1.0 sends them in one ``send()``).

``simple_websocket`` (the websocket server of the gevent and threading engines) writes every
frame with a single ``socket.send()``. A socket takes only what fits in its send buffer, so
with a large batch, a slow reader or many clients the rest of the frame was silently
dropped: the client's parser then waited forever for the missing bytes, and that
connection went dead without an error (measured: a resume replaying more than ~7 MB never
completed). :func:`install` gives each websocket a socket whose ``send()`` writes all of
its data, one frame at a time (a lock keeps a ping/pong from landing inside a data frame).
"""

from __future__ import annotations

import threading
from typing import Any

_installed = False


class CompleteSends:
    """A socket proxy whose ``send()`` is ``sendall()``, serialised between writers."""

    def __init__(self, sock: Any):
        self._sock = sock
        self._lock = threading.Lock()  # a gevent/eventlet lock once those engines patch

    def send(self, data: bytes, *flags: int) -> int:
        with self._lock:
            self._sock.sendall(data, *flags)
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def install() -> None:
    """Wrap the socket of every simple-websocket connection made from now on (idempotent)."""
    global _installed
    if _installed:
        return
    try:
        from simple_websocket import ws
    except ImportError:  # the eventlet engine uses eventlet's own websocket
        return
    original = ws.Base.__init__

    def __init__(self: Any, sock: Any = None, *args: Any, **kwargs: Any) -> None:
        if sock is not None and not isinstance(sock, CompleteSends):
            sock = CompleteSends(sock)
        original(self, sock, *args, **kwargs)

    ws.Base.__init__ = __init__  # type: ignore[method-assign]
    _installed = True
