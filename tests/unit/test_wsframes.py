"""Websocket frames are written whole, whatever the socket's send buffer takes at once."""

from __future__ import annotations

import contextlib
import socket
import threading

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
