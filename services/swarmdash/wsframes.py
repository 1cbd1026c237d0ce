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
message compresses to the same bytes for every client, and each distinct message is
deflated once and the result reused (a cache bounded by :data:`CACHE_BYTES`). The client
still inflates normally; only the cross-message dictionary is lost, which batches of
JSON hardly need. ``per-client`` keeps the stock behaviour; ``off`` declines compression.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from typing import Any

#: Most bytes (messages + their compressed form) the shared-compression cache holds.
CACHE_BYTES = 16 * 1024 * 1024
#: Messages larger than this are compressed for their one client, not cached (a resume's
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


class DeflateCache:
    """Compressed payloads by (window bits, message), least recently used out first."""

    def __init__(self, budget: int = CACHE_BYTES, message_max: int = CACHE_MESSAGE_MAX):
        self.budget = budget
        self.message_max = message_max
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[int, bytes], bytes] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def deflate(data: bytes, bits: int) -> bytes:
        """One whole message as permessage-deflate sends it without context takeover."""
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -bits)
        return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]

    def get(self, data: bytes, bits: int) -> bytes:
        if len(data) > self.message_max:
            return self.deflate(data, bits)
        key = (bits, data)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
        compressed = self.deflate(data, bits)
        with self._lock:
            self.misses += 1
            if key not in self._entries:
                self._entries[key] = compressed
                self.size += len(data) + len(compressed)
                while self.size > self.budget and self._entries:
                    (_, old), old_compressed = self._entries.popitem(last=False)
                    self.size -= len(old) + len(old_compressed)
        return compressed


CACHE = DeflateCache()


def _extension_classes() -> tuple[type, type]:
    from wsproto.extensions import PerMessageDeflate
    from wsproto.frame_protocol import Opcode, RsvBits

    class SharedDeflate(PerMessageDeflate):
        """permessage-deflate with ``server_no_context_takeover``: whole messages are
        compressed through :data:`CACHE`, so a room's batch is deflated once."""

        def __init__(self) -> None:
            super().__init__(server_no_context_takeover=True)

        def frame_outbound(self, proto: Any, opcode: Any, rsv: Any, data: bytes,
                           fin: bool) -> tuple[Any, bytes]:
            if not fin or opcode is Opcode.CONTINUATION or not self._compressible_opcode(
                    opcode):
                return super().frame_outbound(proto, opcode, rsv, data, fin)
            bits = self.client_max_window_bits if proto.client else self.server_max_window_bits
            return (RsvBits(True, rsv[1], rsv[2]), CACHE.get(bytes(data), int(bits)))

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
            original_init(self, sock, *args, **kwargs)

        ws.Base.__init__ = __init__
        ws._swarmdash_stock_deflate = stock_deflate
    shared, off = _extension_classes()
    # simple-websocket names PerMessageDeflate when it accepts a connection.
    ws.PerMessageDeflate = {
        "shared": shared, "off": off,
        "per-client": ws._swarmdash_stock_deflate,
    }[compression]
    _installed = compression
