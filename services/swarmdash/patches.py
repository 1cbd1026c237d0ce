"""Every change this project makes to a third-party library, in one place.

:func:`install` applies them when a node starts, after :func:`check_versions` has made
sure the installed versions are the ones they were written for: a node whose libraries
moved on refuses to start, naming the package, rather than run code it was not tested
with. Each patch says why it exists and when it can go.

1. **simple-websocket writes whole frames** (every engine that uses simple-websocket:
   gevent's handshake, threading). It sends each frame with one ``socket.send()``, which
   takes only what fits in the send buffer: the rest of a large frame was dropped and the
   connection went dead (upstream miguelgrinberg/simple-websocket#45). Each websocket's
   socket becomes a :class:`~swarmdash.wsframes.CompleteSends`. Remove once a release
   writes with ``sendall``.
2. **simple-websocket's permessage-deflate is the one WEBSOCKET_COMPRESSION names**
   (``shared``, ``per-client``, ``off``; see :mod:`swarmdash.wsframes`), and its text
   frames come from the shared frame cache. simple-websocket has no option for
   ``server_no_context_takeover`` or for declining compression; remove when it has.
3. **Engine.IO websockets under gevent write through an outbox and ping from one timer**
   (:mod:`swarmdash.wsconn`): no queue, writer greenlet, reader greenlet or ping greenlet
   per connection. python-engineio has no hook for either; the per-client queue and
   writer are discussed upstream in miguelgrinberg/python-engineio#133 and
   miguelgrinberg/python-socketio#1290. Remove if python-engineio grows a direct write
   path, by deleting :func:`_lean_engineio` (everything keeps working on the stock path).
   Once a websocket is accepted, its wsproto handshake object (an h11 connection and the
   request) is dropped, since wsproto keeps it for the life of the connection.
4. **No garbage cycles per connection or per event** (Flask, python-engineio).
   Flask-SocketIO runs every Socket.IO event in a Flask request context for the
   ``/socket.io/`` path, which no Flask route matches: the request keeps its NotFound, whose
   traceback holds the request context, a cycle per event that only the cyclic collector
   frees (rarely, once a node holds thousands of connections). A popped context now drops
   its routing exception. python-engineio's WSGI middleware defines a new class for every
   gunicorn request (its ``eventlet.input`` shim; a class is always a cycle); one class
   serves here. Together they were several KB per idle dashboard. Remove when upstream
   stops making them.
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any

from . import wsframes

log = logging.getLogger(__name__)

#: The release series each patch was written and tested against.
PATCHED = {"simple-websocket": "1.1.", "python-engineio": "4.15.", "wsproto": "1.",
           "flask": "3.1."}
COMPRESSION_MODES = wsframes.MODES


class UnsupportedLibrary(RuntimeError):
    """An installed library is not the version a patch here was written for."""


def check_versions() -> None:
    for package, series in PATCHED.items():
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue  # not installed: its patch is not applied either
        if not version.startswith(series):
            raise UnsupportedLibrary(
                f"{package} {version} is installed, but swarmdash.patches was written for "
                f"{series}x; install the version pyproject.toml pins")


_installed: str | None = None


def _simple_websocket(compression: str) -> None:
    """Patches 1 and 2; the last compression mode installed wins."""
    global _installed
    try:
        from simple_websocket import ws
    except ImportError:  # eventlet uses its own websocket
        return
    if _installed is None:
        original_init = ws.Base.__init__
        original_send = ws.Base.send

        def __init__(self: Any, sock: Any = None, *args: Any, **kwargs: Any) -> None:
            if sock is not None and not isinstance(sock, wsframes.CompleteSends):
                sock = wsframes.CompleteSends(sock)
            original_init(self, sock, *args, **kwargs)  # the handshake happens here
            self._frame_style = wsframes.frame_style(self.ws)

        def send(self: Any, data: Any) -> None:
            """Text messages as whole frames from the cache where the connection's
            framing allows (plain, or shared deflate); anything else as before."""
            style = getattr(self, "_frame_style", wsframes.UNCACHED)
            if style != wsframes.UNCACHED and isinstance(data, str) and self.connected:
                self.sock.send(wsframes.CACHE.get(data, wsframes.fresh_bits(style)))
                return
            original_send(self, data)

        ws.Base.__init__ = __init__
        ws.Base.send = send
        ws._swarmdash_stock_deflate = ws.PerMessageDeflate
    shared, off = wsframes.extension_classes()
    # simple-websocket names PerMessageDeflate when it accepts a connection.
    ws.PerMessageDeflate = {
        "shared": shared, "off": off, "per-client": ws._swarmdash_stock_deflate,
    }[compression]
    _installed = compression


def _lean_engineio(eio_server: Any) -> None:
    """Patch 3, for one Engine.IO server running under gevent."""
    import engineio.socket
    import gevent

    from . import wsconn

    # gevent records each greenlet's spawning stack and tree unless told not to: bytes per
    # connection that nothing here reads
    gevent.config.track_greenlet_tree = False
    engineio.socket.Socket = wsconn.LeanSocket  # server.py builds sockets through the module
    eio_server._async = {**eio_server._async, "websocket": wsconn.LeanWebSocketWSGI}
    setattr(eio_server, wsconn.PINGER_ATTR, wsconn.Pinger(eio_server))


class _GunicornInput:
    """The socket of a gunicorn request as eventlet's websocket looks for it."""

    __slots__ = ("socket",)

    def __init__(self, sock: Any):
        self.socket = sock

    def get_socket(self) -> Any:
        return self.socket


def _no_cycles() -> None:
    """Patch 4: python-engineio's middleware and Flask's request contexts."""
    from engineio.middleware import WSGIApp

    if not getattr(WSGIApp.__call__, "_swarmdash", False):
        original = WSGIApp.__call__

        def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
            if "gunicorn.socket" in environ:
                environ["eventlet.input"] = _GunicornInput(environ["gunicorn.socket"])
                path = environ["PATH_INFO"]
                if path is not None and path.startswith(self.engineio_path):
                    return self.engineio_app.handle_request(environ, start_response)
                if not self.static_files and self.wsgi_app is not None:
                    return self.wsgi_app(environ, start_response)
            return original(self, environ, start_response)

        __call__._swarmdash = True  # type: ignore[attr-defined]
        WSGIApp.__call__ = __call__

    _unlink_routing_exception()


def _unlink_routing_exception() -> None:
    """A popped request context no longer needs its routing exception: unlink it, so the
    exception's traceback (which holds the context) is freed at once, not by the cyclic
    collector."""
    from flask.ctx import RequestContext

    if getattr(RequestContext.pop, "_swarmdash", False):
        return
    original = RequestContext.pop

    def pop(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            original(self, *args, **kwargs)
        finally:
            self.request.routing_exception = None

    pop._swarmdash = True  # type: ignore[attr-defined]
    RequestContext.pop = pop  # type: ignore[method-assign]


def install(compression: str = "shared", eio_server: Any = None) -> None:
    """Apply the patches for websockets made from now on. ``eio_server`` (the node's
    Engine.IO server) gets patch 3 when it runs under gevent. Idempotent."""
    if compression not in COMPRESSION_MODES:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSION_MODES)}")
    check_versions()
    _simple_websocket(compression)
    if eio_server is not None and eio_server.async_mode == "gevent":
        _lean_engineio(eio_server)
    _no_cycles()
