"""Websocket frames as a server writes them: whole, and compressed once for every client.

**Compression once per message** (``WEBSOCKET_COMPRESSION=shared``, the default). Browsers
and the Node.js client offer permessage-deflate; a compression context per connection
deflates every batch sent to a room again for every member. Here the server answers the
offer with ``server_no_context_takeover`` (RFC 7692 lets a server always add it), so a
message compresses to the same bytes for every client. The client still inflates
normally; only the cross-message dictionary is lost, which batches of JSON hardly need.
``per-client`` keeps a context per connection; ``off`` declines compression.

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
from typing import Any

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


def extension_classes() -> tuple[type, type]:
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


