"""Websocket frames are written whole, and compressed once for every client."""

from __future__ import annotations

import contextlib
import socket
import threading
import zlib

import pytest
from simple_websocket import ws

from swarmdash import wsframes

PAYLOAD = b"x" * (4 * 1024 * 1024)


def _reader(sock: socket.socket, into: bytearray) -> threading.Thread:
    def run() -> None:
        while chunk := sock.recv(65536):
            into.extend(chunk)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_plain_send_may_write_part_of_a_large_frame() -> None:
    """Why the wrapper exists: a socket with a timeout (as under gevent) takes what fits."""
    a, b = socket.socketpair()
    a.settimeout(5)
    try:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        assert a.send(PAYLOAD) < len(PAYLOAD)
    finally:
        a.close()
        b.close()


def test_complete_sends_deliver_every_byte() -> None:
    a, b = socket.socketpair()
    a.settimeout(5)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    received = bytearray()
    reader = _reader(b, received)
    try:
        wrapped = wsframes.CompleteSends(a)
        assert wrapped.send(PAYLOAD) == len(PAYLOAD)
        assert wrapped.fileno() == a.fileno()  # everything else is the socket's
        a.shutdown(socket.SHUT_WR)
        reader.join(10)
        assert bytes(received) == PAYLOAD
    finally:
        a.close()
        b.close()


def test_install_wraps_the_socket_of_every_websocket() -> None:
    wsframes.install()
    wsframes.install()  # idempotent
    seen: list[object] = []

    class Probe(ws.Base):
        def handshake(self) -> None:
            seen.append(self.sock)  # stop before the reader thread starts

    a, b = socket.socketpair()
    try:
        with contextlib.suppress(Exception):  # not connected: the probe only looks at its socket
            Probe(a)
        assert isinstance(seen[0], wsframes.CompleteSends)
    finally:
        a.close()
        b.close()


def inflate(payload: bytes, bits: int = 15) -> bytes:
    """What a permessage-deflate client does with one message (RFC 7692 7.2.2)."""
    return zlib.decompressobj(-bits).decompress(payload + b"\x00\x00\xff\xff")


def test_a_message_is_deflated_once_and_inflates_back() -> None:
    cache = wsframes.DeflateCache()
    message = b'42["log_update_batch",{"events":[' + b'{"seq":1},' * 500 + b"]}]"
    first = cache.get(message, 15)
    assert inflate(first) == message
    assert len(first) < len(message) / 10
    again = cache.get(bytes(bytearray(message)), 15)  # an equal message, another object
    assert again is first and (cache.hits, cache.misses) == (1, 1)
    assert inflate(cache.get(message, 10), 10) == message  # a smaller window is its own entry
    assert cache.misses == 2


def test_the_cache_stays_within_its_budget_and_skips_huge_messages() -> None:
    cache = wsframes.DeflateCache(budget=64 * 1024, message_max=16 * 1024)
    for i in range(100):
        cache.get(f"{i:04d}".encode() * 1000, 15)  # 4 KB each
    assert cache.size <= 64 * 1024
    huge = b"y" * (32 * 1024)
    assert inflate(cache.get(huge, 15)) == huge
    assert inflate(cache.get(huge, 15)) == huge
    assert cache.hits == 0, "a message over message_max is compressed each time, not kept"


def test_install_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="shared, per-client, off"):
        wsframes.install("gzip")
