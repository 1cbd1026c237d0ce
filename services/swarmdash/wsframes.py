"""Websocket frames as a server writes them: whole, and compressed once for every client.

**Compression once per room** (``WEBSOCKET_COMPRESSION=shared``, the default). Browsers
and the Node.js client offer permessage-deflate; a compression context per connection
deflates every batch sent to a room again for every member. Here a room's messages are
one deflate stream (:class:`RoomStream`) that every member following it receives
byte for byte: each batch may refer back to the room's earlier ones, as with a context
per connection, yet it is compressed once. A client that asks for no context takeover (or
a smaller window) gets each message compressed on its own, the
same bytes for every such client. ``per-client`` keeps a context per connection; ``off``
declines compression.

**One frame per message.** A server's frames are not masked, so with plain or shared
compression a message's whole frame (header and payload) is the same for every client: it
is built once (:func:`text_frame`; :class:`FrameCache` where the caller is a per-client
writer) instead of being encoded, compressed and framed again per client.

**Whole frames.** :class:`CompleteSends` is a socket whose ``send()`` writes all of its
data, one frame at a time. How these are put into simple-websocket is in
:mod:`swarmdash.patches`.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections import OrderedDict
from types import ModuleType
from typing import Any

#: The library that compresses room streams: zlib-ng (the same deflate streams as zlib, made
#: in a quarter to a third less time at :data:`STREAM_LEVEL`), or zlib where it has no wheel.
STREAM_ZLIB: ModuleType
try:
    from zlib_ng import zlib_ng as STREAM_ZLIB
except ImportError:  # pragma: no cover - a platform without zlib-ng's wheel
    STREAM_ZLIB = zlib

#: Most bytes (messages + their compressed form) the shared-compression cache holds.
CACHE_BYTES = 16 * 1024 * 1024
#: Messages larger than this are framed for their one client, not cached (a resume's
#: replay is sent to one client; a room's batches are far smaller).
CACHE_MESSAGE_MAX = 1024 * 1024
MODES = ("shared", "per-client", "off")

class CompleteSends:
    """A socket proxy whose ``send()`` is ``sendall()``, serialised between writers."""

    def __init__(self, sock: Any):
        self._sock = sock
        self._lock = threading.Lock()  # a gevent/eventlet lock once those engines patch

    def send(self, data: bytes, *flags: int) -> int:
        with self._lock:
            self._sock.sendall(data, *flags)
        return len(data)

    @property
    def inner(self) -> Any:
        return self._sock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def deflate(data: bytes, bits: int) -> bytes:
    """One whole message as permessage-deflate sends it without context takeover."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -bits)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def _header(first: int, n: int) -> bytes:
    if n < 126:
        return bytes((first, n))
    if n < 65536:
        return struct.pack("!BBH", first, 126, n)
    return struct.pack("!BBQ", first, 127, n)


def text_frame(message: str, bits: int | None) -> bytes:
    """A server's whole text frame for ``message``: FIN, unmasked; deflated (RSV1 set)
    when ``bits`` is a window size, plain when it is None."""
    payload = message.encode("utf-8")
    first = 0x81
    if bits is not None:
        payload = deflate(payload, bits)
        first |= 0x40
    return _header(first, len(payload)) + payload


class RoomStream:
    """A room's messages as one permessage-deflate stream, shared by the members that follow
    it (:data:`STREAM` connections, which agreed to context takeover).

    Each message may refer back to the room's earlier messages, so a batch compresses to
    about half of what it does alone; it is still compressed once for every follower. A
    connection follows one room's stream, from a *reset point* on: the first message, or
    one that begins with a full flush (nothing after it refers to anything before), made
    whenever :attr:`reset` is set because a connection is to start following. Everything
    else a following connection receives is sent uncompressed, which leaves the client's
    window as it was, or, when it is large, compressed on its own, after which the
    connection starts over at the room's next reset point.
    """

    __slots__ = ("_compressor", "reset")

    def __init__(self) -> None:
        self._compressor: Any = None
        self.reset = True  # the next message is a reset point

    def frame(self, message: str) -> bytes:
        """The next message of the stream as a whole frame (RSV1 set)."""
        compressor = self._compressor
        head = b""
        if compressor is None:
            compressor = self._compressor = STREAM_ZLIB.compressobj(
                STREAM_LEVEL, STREAM_ZLIB.DEFLATED, -STREAM_WINDOW_BITS, STREAM_MEM_LEVEL)
        elif self.reset:
            head = compressor.flush(STREAM_ZLIB.Z_FULL_FLUSH)
        self.reset = False
        data = (head + compressor.compress(message.encode("utf-8"))
                + compressor.flush(STREAM_ZLIB.Z_SYNC_FLUSH))[:-4]
        return _header(0xC1, len(data)) + data


class FrameCache:
    """Whole frames by (compression, message), least recently used out first.

    A room's batch is one packet object, encoded once to one string by Engine.IO, so every
    member's writer asks for the same string: after the first, a lookup by identity."""

    def __init__(self, budget: int = CACHE_BYTES, message_max: int = CACHE_MESSAGE_MAX):
        self.budget = budget
        self.message_max = message_max
        self.size = 0
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
                return found
        frame = text_frame(message, bits)
        with self._lock:
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
#: The frame style of a connection that may follow a room's :class:`RoomStream` (shared
#: deflate with context takeover and the full window).
STREAM = -2
#: permessage-deflate's largest (and default) window.
FULL_WINDOW_BITS = 15
#: A room stream's window (the full one: it holds more earlier batches to refer back to,
#: for about 10% fewer bytes than 8 KB) and zlib memory level (a smaller hash than zlib's
#: default, which compresses these batches as well): about 85 KB resident per room that
#: has followers, freed with the room.
STREAM_WINDOW_BITS = 15
STREAM_MEM_LEVEL = 6
#: zlib level of a room stream: 7 finds about 6% more of the earlier batches than the
#: default 6 for a fifth more time per message, still less than compressing each message
#: on its own at 6 cost (level 8 and up take twice as long and find no more).
STREAM_LEVEL = 7
#: Messages of one connection alone (acks, replays, pings) shorter than this are sent
#: uncompressed on a connection that follows a room stream; longer ones are compressed on
#: their own, and the connection follows again from its room's next reset point.
PRIVATE_PLAIN_MAX = 1024


def fresh_bits(style: int | None) -> int | None:
    """The window of a message compressed on its own for a connection of ``style`` (None:
    uncompressed)."""
    return FULL_WINDOW_BITS if style == STREAM else style


def frame_style(connection: Any) -> int | None:
    """How a connection's text frames are built: None plain, :data:`STREAM` for shared
    deflate with context takeover, a window size for shared deflate where the client asked
    for no context takeover or a smaller window (each message compressed on its own),
    :data:`UNCACHED` for anything else (per-client compression)."""
    proto = getattr(getattr(connection, "connection", None), "_proto", None)
    if proto is None or getattr(connection, "client", True):  # a client masks its frames
        return UNCACHED
    extensions = [e for e in proto.extensions if e.enabled()]
    if not extensions:
        return None
    if len(extensions) == 1 and getattr(extensions[0], "shared", False):
        deflate = extensions[0]
        bits = int(deflate.server_max_window_bits)
        if not deflate.server_no_context_takeover and bits == FULL_WINDOW_BITS:
            return STREAM
        return bits
    return UNCACHED


def extension_classes() -> tuple[type, type]:
    from wsproto.extensions import PerMessageDeflate

    class SharedDeflate(PerMessageDeflate):
        """permessage-deflate whose frames the node builds once for every client: a room's
        messages as its :class:`RoomStream`, anything else compressed on its own (from
        :data:`CACHE`). Context takeover is agreed unless the client asks for none."""

        shared = True

        def frame_outbound(self, proto: Any, opcode: Any, rsv: Any, data: bytes,
                           fin: bool) -> tuple[Any, bytes]:
            """What wsproto frames itself (a binary message; text never comes here) goes
            uncompressed: its own compressor would change the client's window under the
            room streams."""
            return rsv, data

    class NoDeflate(PerMessageDeflate):
        """Declines every permessage-deflate offer: frames go uncompressed."""

        def accept(self, offer: str) -> None:
            return None

    return SharedDeflate, NoDeflate


