"""A websocket's outbox writes every frame once, in call order: straight to the socket, or
behind what waits when the peer reads slowly; corked writes leave in one system call."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import gevent
import gevent.socket
import pytest

from swarmdash.wsconn import Outbox, corked

Pair = tuple[gevent.socket.socket, gevent.socket.socket]


@pytest.fixture
def pair() -> Iterator[Pair]:
    a, b = gevent.socket.socketpair()
    # small buffers, so a few frames fill the socket and the backlog path is taken
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def outbox(sock: gevent.socket.socket) -> Outbox:
    return Outbox(sock, None, gevent.spawn, lambda message: b"")


def read_exactly(sock: gevent.socket.socket, n: int, timeout: float = 10) -> bytes:
    out = bytearray()
    with gevent.Timeout(timeout):
        while len(out) < n:
            chunk = sock.recv(65536)
            assert chunk, "the writer closed early"
            out += chunk
    return bytes(out)


def frames(n: int, size: int) -> list[bytes]:
    return [f"{i:08d}".encode() * (size // 8) for i in range(n)]


def test_a_reader_that_stalls_gets_every_frame_once_and_in_order(pair: Pair) -> None:
    a, b = pair
    box = outbox(a)
    sent = frames(200, 4000)  # ~800 KB against a few KB of socket buffer
    for f in sent[:100]:
        box.write(f)
    assert box.backlog_bytes > 0, "a stalled reader must leave a backlog"
    # the reader takes some now, before the backlog's greenlet has run: the socket has room
    # again, yet later writes must queue behind the backlog, never overtake it
    early = bytearray()
    try:
        while True:
            early += b._sock.recv(65536)  # the raw socket: no greenlet switch
    except BlockingIOError:
        assert early, "the socket held nothing to read"
    for f in sent[100:]:
        box.write(f)
    rest = read_exactly(b, sum(map(len, sent)) - len(early))
    assert bytes(early) + rest == b"".join(sent)
    with gevent.Timeout(5):
        while box.draining:
            gevent.sleep(0.01)
    assert box.backlog_bytes == 0 and not box.backlog
    assert box.sent_bytes == sum(map(len, sent))


def test_writes_to_an_idle_reader_go_straight_to_the_socket(pair: Pair) -> None:
    a, b = pair
    box = outbox(a)
    box.write(b"hello")
    assert not box.draining and not box.backlog, "no greenlet or backlog for a free socket"
    assert read_exactly(b, 5) == b"hello"


def test_corked_writes_leave_together_per_connection_in_order(pair: Pair) -> None:
    a, b = pair
    c, d = gevent.socket.socketpair()
    try:
        first, second = outbox(a), outbox(c)
        with corked():
            first.write(b"1-")
            second.write(b"x-")
            first.write(b"2-")
            with corked():  # nested: still one flush at the outermost end
                first.write(b"3")
            assert first.sent_bytes == 0 and second.sent_bytes == 0, "nothing leaves inside"
        assert read_exactly(b, 5) == b"1-2-3"
        assert read_exactly(d, 2) == b"x-"
    finally:
        c.close()
        d.close()


def test_ending_after_a_backlog_sends_it_all_first(pair: Pair) -> None:
    a, b = pair
    box = outbox(a)
    sent = frames(50, 4000)
    for f in sent:
        box.write(f)
    box.end(abort=False)  # the connection closes once the backlog has left
    data = read_exactly(b, sum(map(len, sent)))
    assert data == b"".join(sent)
    with gevent.Timeout(5):
        assert b.recv(10) == b"", "shut down after the last frame"


def test_an_abort_drops_what_waits(pair: Pair) -> None:
    a, _ = pair
    box = outbox(a)
    for f in frames(50, 4000):
        box.write(f)
    box.end(abort=True)
    assert box.dead and box.backlog_bytes == 0
    box.write(b"after")  # a dead outbox takes nothing more
    assert not box.backlog
