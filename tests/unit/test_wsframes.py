"""Websocket frames are written whole, and compressed once for every client."""

from __future__ import annotations

import contextlib
import socket
import threading
import zlib

import pytest
from simple_websocket import ws

from swarmdash import patches, wsframes

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
    patches.install()
    patches.install()  # idempotent
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


def parse(frame: bytes) -> tuple[int, bytes]:
    """(first byte, payload) of one unmasked frame."""
    n = frame[1] & 0x7F
    offset = 2
    if n == 126:
        n, offset = int.from_bytes(frame[2:4], "big"), 4
    elif n == 127:
        n, offset = int.from_bytes(frame[2:10], "big"), 10
    assert not frame[1] & 0x80, "a server's frames are not masked"
    assert len(frame) == offset + n
    return frame[0], frame[offset:]


MESSAGE = '42["log_update_batch",{"batch":[' + '{"seq":1,"text":"é"},' * 500 + ']}]'


@pytest.fixture
def framed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The messages framed (encoded, deflated, given a header) since the test began."""
    seen: list[str] = []
    build = wsframes.text_frame

    def spy(message: str, bits: int | None) -> bytes:
        seen.append(message)
        return build(message, bits)

    monkeypatch.setattr(wsframes, "text_frame", spy)
    return seen


def test_a_message_is_framed_once_and_inflates_back(framed: list[str]) -> None:
    cache = wsframes.FrameCache()
    frame = cache.get(MESSAGE, 15)
    first, payload = parse(frame)
    assert first == 0xC1, "FIN, RSV1 (compressed), text"
    assert inflate(payload).decode() == MESSAGE
    assert len(frame) < len(MESSAGE) / 10
    assert cache.get(MESSAGE, 15) is frame and framed == [MESSAGE], "built once, then reused"
    plain = cache.get(MESSAGE, None)
    assert parse(plain) == (0x81, MESSAGE.encode()), "FIN, text, not compressed"
    small = wsframes.text_frame("40", None)
    assert small == b"\x81\x0240"


def test_the_cache_stays_within_its_budget_and_skips_huge_messages(framed: list[str]) -> None:
    cache = wsframes.FrameCache(budget=64 * 1024, message_max=16 * 1024)
    for i in range(100):
        cache.get(f"{i:04d}" * 1000, 15)  # 4 KB each
    assert cache.size <= 64 * 1024
    huge = "y" * (80 * 1024)  # also: a 64-bit length
    assert inflate(parse(cache.get(huge, 15))[1]).decode() == huge
    assert parse(cache.get(huge, None))[1] == huge.encode()
    framed.clear()
    cache.get(huge, 15)
    cache.get(huge, 15)
    assert framed == [huge, huge], "a message over message_max is framed each time, not kept"


def test_install_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="shared, per-client, off"):
        patches.install("gzip")


def test_a_library_of_another_series_than_the_patched_one_is_refused_by_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = patches.metadata.version
    monkeypatch.setattr(patches.metadata, "version",
                        lambda name: "4.16.0" if name == "python-engineio" else real(name))
    with pytest.raises(patches.UnsupportedLibrary, match=r"python-engineio 4\.16\.0.*4\.15\.x"):
        patches.install()
