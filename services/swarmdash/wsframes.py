"""How websocket frames are written: whole, and compressed once for every client.

simple-websocket (the websocket server of the gevent and threading engines) has two costs
that grow with the number of clients, fixed here for every connection made after
:func:`install`:

**Whole frames.** It writes each frame with a single ``socket.send()``. A socket takes
only what fits in its send buffer, so with a large batch, a slow reader or many clients
the rest of the frame was silently dropped: the client's parser then waited forever for
the missing bytes and the connection went dead without an error (measured: a resume
replaying more than ~7 MB never completed). Each websocket here gets a socket whose
``send()`` writes all of its data, one frame at a time (a lock keeps a ping or pong from
landing inside a data frame).

**Compression once per message** (``WEBSOCKET_COMPRESSION=shared``, the default). Browsers
and the Node.js client offer permessage-deflate, and simple-websocket accepted it with a
compression context per connection: every batch sent to a room was deflated again for
every member. Under 500 clients that was 45% of a node's CPU. Here the server answers the
offer with ``server_no_context_takeover`` (RFC 7692 lets a server always add it), so a
message compresses to the same bytes for every client. The client still inflates
normally; only the cross-message dictionary is lost, which batches of JSON hardly need.
``per-client`` keeps the stock behaviour; ``off`` declines compression.

**One frame per message.** A server's frames are not masked, so with plain or shared
compression a message's whole frame (header and payload) is the same for every client: it
is built once and each client's writer only writes it (:class:`FrameCache`, bounded by
:data:`CACHE_BYTES`), instead of encoding, compressing and framing it again per client.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections import OrderedDict
from typing import Any

#: Most bytes (messages + their compressed form) the shared-compression cache holds.
CACHE_BYTES = 16 * 1024 * 1024
#: Messages larger than this are framed for their one client, not cached (a resume's
#: replay is sent to one client; a room's batches are far smaller).
CACHE_MESSAGE_MAX = 1024 * 1024
MODES = ("shared", "per-client", "off")

_installed: str | None = None


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


def deflate(data: bytes, bits: int) -> bytes:
    """One whole message as permessage-deflate sends it without context takeover."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -bits)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def text_frame(message: str, bits: int | None) -> bytes:
    """A server's whole text frame for ``message``: FIN, unmasked; deflated (RSV1 set)
    when ``bits`` is a window size, plain when it is None."""
    payload = message.encode("utf-8")
    first = 0x81
    if bits is not None:
        payload = deflate(payload, bits)
        first |= 0x40
    n = len(payload)
    if n < 126:
        header = bytes((first, n))
    elif n < 65536:
        header = struct.pack("!BBH", first, 126, n)
    else:
        header = struct.pack("!BBQ", first, 127, n)
    return header + payload


class FrameCache:
    """Whole frames by (compression, message), least recently used out first.

    A room's batch is one packet object, encoded once to one string by Engine.IO, so every
    member's writer asks for the same string: after the first, a lookup by identity."""

    def __init__(self, budget: int = CACHE_BYTES, message_max: int = CACHE_MESSAGE_MAX):
        self.budget = budget
        self.message_max = message_max
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[int | None, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, message: str, bits: int | None) -> bytes:
        if len(message) > self.message_max:
            return text_frame(message, bits)
        key = (bits, message)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
        frame = text_frame(message, bits)
        with self._lock:
            self.misses += 1
            if key not in self._entries:
                self._entries[key] = frame
                self.size += len(message) + len(frame)
                while self.size > self.budget and self._entries:
                    (_, old), old_frame = self._entries.popitem(last=False)
                    self.size -= len(old) + len(old_frame)
        return frame


CACHE = FrameCache()
#: The frame style of a connection whose frames are not cached (per-client compression).
UNCACHED = -1


def frame_style(connection: Any) -> int | None:
    """How a connection's text frames are built: None plain, a window size for shared
    deflate, :data:`UNCACHED` for anything else (per-client compression)."""
    proto = getattr(getattr(connection, "connection", None), "_proto", None)
    if proto is None or getattr(connection, "client", True):  # a client masks its frames
        return UNCACHED
    extensions = [e for e in proto.extensions if e.enabled()]
    if not extensions:
        return None
    if len(extensions) == 1 and getattr(extensions[0], "shared", False):
        return int(extensions[0].server_max_window_bits)
    return UNCACHED


def _extension_classes() -> tuple[type, type]:
    from wsproto.extensions import PerMessageDeflate

    class SharedDeflate(PerMessageDeflate):
        """permessage-deflate with ``server_no_context_takeover``: a message compresses to
        the same bytes for every client, so its frame comes from :data:`CACHE`."""

        shared = True

        def __init__(self) -> None:
            super().__init__(server_no_context_takeover=True)

    class NoDeflate(PerMessageDeflate):
        """Declines every permessage-deflate offer: frames go uncompressed."""

        def accept(self, offer: str) -> None:
            return None

    return SharedDeflate, NoDeflate


def install(compression: str = "shared") -> None:
    """Patch simple-websocket for connections made from now on. Call once per process
    (the last mode wins); a no-op where simple-websocket is not used (eventlet)."""
    global _installed
    if compression not in MODES:
        raise ValueError(f"compression must be one of {', '.join(MODES)}")
    try:
        from simple_websocket import ws
    except ImportError:  # the eventlet engine uses eventlet's own websocket
        return
    if _installed is None:
        original_init = ws.Base.__init__
        stock_deflate = ws.PerMessageDeflate

        def __init__(self: Any, sock: Any = None, *args: Any, **kwargs: Any) -> None:
            if sock is not None and not isinstance(sock, CompleteSends):
                sock = CompleteSends(sock)
            original_init(self, sock, *args, **kwargs)  # the handshake happens here
            self._frame_style = frame_style(self.ws)

        original_send = ws.Base.send

        def send(self: Any, data: Any) -> None:
            """Text messages as whole frames from :data:`CACHE` where the connection's
            framing allows (plain, or shared deflate); anything else as before."""
            style = getattr(self, "_frame_style", UNCACHED)
            if style != UNCACHED and isinstance(data, str) and self.connected:
                self.sock.send(CACHE.get(data, style))
                return
            original_send(self, data)

        ws.Base.__init__ = __init__
        ws.Base.send = send
        ws._swarmdash_stock_deflate = stock_deflate
    shared, off = _extension_classes()
    # simple-websocket names PerMessageDeflate when it accepts a connection.
    ws.PerMessageDeflate = {
        "shared": shared, "off": off,
        "per-client": ws._swarmdash_stock_deflate,
    }[compression]
    _installed = compression
