"""Websocket connections under gevent: one greenlet each, and frames written without a queue.

Stock python-engineio gives every websocket a packet queue and a writer greenlet,
simple-websocket adds a reader greenlet, and every ping cycle sleeps in a greenlet of its
own: four greenlets and a queue per idle dashboard, and a queue hop plus a greenlet switch
for every frame sent. Under gevent (the production engine) a connection here is:

- the request's own greenlet, which reads the socket itself (:class:`LeanServer`);
- an :class:`Outbox`, which writes a frame at once when nothing waits before it, and
  otherwise puts it behind what waits; a greenlet drains that backlog and exists only
  while there is one;
- an entry in the node's one ping timer (:class:`Pinger`).

Writes made inside :func:`corked` (the relay's pass over the events of one read, or one
flush tick) are gathered per connection and leave in one system call each when the block
ends.

Order: every byte a connection sends goes through its outbox (the relay's room frames,
python-socketio's acks, replays and connect packets, pings, simple-websocket's pongs and
close frames), and an outbox writes in call order: a write goes straight to the socket only
when no earlier write is waiting; gevent switches greenlets only where one blocks, so no
other write can come between that check and the system call.

Long-polling clients, the threading engine and eventlet keep Engine.IO's stock queue; the
classes fall back to their parents wherever a connection is not one of these.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio import socket as eio_socket
from simple_websocket import Server as SimpleServer
from wsproto.events import BytesMessage, TextMessage

from .wsframes import (
    PRIVATE_PLAIN_MAX,
    STREAM,
    UNCACHED,
    CompleteSends,
    RoomStream,
    frame_style,
    fresh_bits,
    text_frame,
)

#: Most buffers given to one sendmsg (Linux accepts 1,024).
IOV_MAX = 512
#: The attribute of an Engine.IO server that holds its :class:`Pinger` once installed.
PINGER_ATTR = "_swarmdash_pinger"


class _Cork:
    active = False
    dirty: list[Outbox] = []


_cork = _Cork()


@contextlib.contextmanager
def corked() -> Iterator[None]:
    """Gather the writes of the block per connection; send each one's at the end, at once."""
    if _cork.active:
        yield
        return
    _cork.active = True
    try:
        yield
    finally:
        _cork.active = False
        dirty, _cork.dirty = _cork.dirty, []
        for outbox in dirty:
            outbox.flush_pending()


class Outbox:
    """What one websocket has to send: written at once, or behind what waits before it."""

    __slots__ = ("backlog", "backlog_bytes", "dead", "draining", "framer", "pending", "raw",
                 "sent_bytes", "shutdown_when_drained", "sock", "spawn", "stream", "style")

    def __init__(self, sock: Any, style: int | None, spawn: Callable[..., Any],
                 framer: Callable[[str | bytes], bytes]):
        self.sock = sock           # the gevent socket: its sendall waits for a slow reader
        self.raw = sock._sock      # the non-blocking socket under it: a send never waits
        self.style = style         # wsframes: None plain, a window size, STREAM or UNCACHED
        self.stream: RoomStream | None = None  # the room stream this connection follows
        self.spawn = spawn
        self.framer = framer       # a message as this connection frames it (per-client deflate)
        # a deque only while something waits: an idle connection holds no buffer
        self.backlog: deque[bytes | memoryview] | tuple[()] = ()
        self.backlog_bytes = 0
        self.sent_bytes = 0  # grows whenever the client takes something (the watchdog)
        self.draining = False
        self.pending: list[bytes] | None = None
        self.dead = False
        self.shutdown_when_drained = False

    def frame(self, message: str | bytes) -> bytes:
        """One message of this connection alone (an ack, a replay, a ping) as its frame."""
        style = self.style
        if style == UNCACHED or not isinstance(message, str):
            return self.framer(message)
        if style != STREAM:
            return text_frame(message, style)
        if len(message) < PRIVATE_PLAIN_MAX:
            return text_frame(message, None)  # leaves the client's window as it was
        if self.stream is not None:  # the window changes: follow again from a reset point
            self.stream.reset = True
            self.stream = None
        return text_frame(message, fresh_bits(style))

    def write(self, data: bytes) -> None:
        if self.dead:
            return
        if _cork.active:
            if self.pending is None:
                self.pending = [data]
                _cork.dirty.append(self)
            else:
                self.pending.append(data)
            return
        self._send([data])

    def flush_pending(self) -> None:
        frames, self.pending = self.pending, None
        if frames and not self.dead:
            self._send(frames)

    def _send(self, frames: list[bytes]) -> None:
        """Write ``frames`` in one system call, or queue them (the frame objects are shared
        by every member of a room, so a backlog holds references, not copies)."""
        if self.backlog or self.draining:
            for frame in frames:
                self._queue(frame)
            return
        try:
            if len(frames) == 1:
                sent = self.raw.send(frames[0])
            else:
                sent = self.raw.sendmsg(frames[:IOV_MAX])
        except BlockingIOError:
            sent = 0
        except OSError:
            self._fail()
            return
        self.sent_bytes += sent
        for frame in frames:
            if sent >= len(frame):
                sent -= len(frame)
                continue
            self._queue(memoryview(frame)[sent:] if sent else frame)
            sent = 0

    def _queue(self, data: bytes | memoryview) -> None:
        if not isinstance(self.backlog, deque):
            self.backlog = deque()
        self.backlog.append(data)
        self.backlog_bytes += len(data)
        if not self.draining:
            self.draining = True
            self.spawn(self._drain)

    def _drain(self) -> None:
        backlog = self.backlog
        assert isinstance(backlog, deque)
        try:
            while backlog:
                chunk = backlog[0]
                sent = self.sock.send(chunk)  # waits until the socket takes something
                self.sent_bytes += sent
                self.backlog_bytes -= sent
                if sent < len(chunk):
                    backlog[0] = memoryview(chunk)[sent:]
                else:
                    backlog.popleft()
        except OSError:
            self._fail()
        finally:
            self.draining = False
            if not self.backlog:
                self.backlog = ()
        if self.shutdown_when_drained:
            self.shutdown()

    def _fail(self) -> None:
        self.dead = True
        self.backlog = ()
        self.backlog_bytes = 0

    def end(self, abort: bool) -> None:
        """Close the connection: now (``abort``: whatever waits is dropped), or once every
        frame written so far has left."""
        if abort or self.dead:
            self._fail()
            self.shutdown()
        elif self.backlog or self.draining:
            self.shutdown_when_drained = True
        else:
            self.shutdown()

    def shutdown(self) -> None:
        """Both directions: the reading greenlet sees the end and the request finishes."""
        with contextlib.suppress(OSError):
            self.raw.shutdown(socket.SHUT_RDWR)


class _NoThread:
    """simple-websocket starts a reader thread; a :class:`LeanServer` reads in its caller."""

    name = "swarmdash-websocket"

    def __init__(self, target: Callable[[], None]):
        pass

    def start(self) -> None:
        pass


class _NoEvent:
    """simple-websocket signals its reader thread's data; nothing waits on it here."""

    def set(self) -> None:
        pass

    def clear(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> bool:
        return True


class _SpentHandshake:
    """wsproto keeps its HTTP handshake (an h11 connection, the request) for the life of a
    websocket and asks it for events every time; once accepted, it has none."""

    def events(self) -> Iterator[Any]:
        return iter(())


_SPENT_HANDSHAKE = _SpentHandshake()


class _SpentQueue:
    """Engine.IO's packet queue of a socket that now writes through its outbox: empty for
    good, shared by every such socket instead of three deques each."""

    queue: tuple[()] = ()

    def put(self, item: Any) -> None:
        raise RuntimeError("this socket writes through its outbox")

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        raise queue.Empty()

    def qsize(self) -> int:
        return 0

    def task_done(self) -> None:
        pass

    def join(self) -> None:
        pass


_SPENT_QUEUE = _SpentQueue()


class _OutboxSocket:
    """What simple-websocket sees as its socket: writes go through the outbox."""

    __slots__ = ("outbox", "sock")

    def __init__(self, outbox: Outbox, sock: Any):
        self.outbox = outbox
        self.sock = sock

    def send(self, data: bytes) -> int:
        self.outbox.write(bytes(data))
        return len(data)

    def recv(self, size: int) -> bytes:
        data: bytes = self.sock.recv(size)
        return data

    def close(self) -> None:
        """The connection's socket, once its reader is done (gunicorn no longer owns it)."""
        self.sock.close()


class LeanServer(SimpleServer):
    """simple-websocket's server without its reader thread: :meth:`receive` reads the
    socket in the calling greenlet, and every write goes through :attr:`outbox`."""

    sock: Any
    ws: Any
    own_greenlet = False  # reads in a greenlet of its own once the request has finished
    connected: bool
    input_buffer: list[Any]
    receive_bytes: int
    mode: str

    def __init__(self, environ: dict[str, Any], spawn: Callable[..., Any],
                 max_message_size: int | None = None):
        super().__init__(environ, max_message_size=max_message_size, thread_class=_NoThread,
                         event_class=_NoEvent)  # the handshake is answered in here
        sock = self.sock.inner if isinstance(self.sock, CompleteSends) else self.sock
        self.outbox = Outbox(sock, frame_style(self.ws), spawn, self._frame)
        self.sock = _OutboxSocket(self.outbox, sock)
        if self.ws.connection is not None:  # accepted: the handshake has done its work
            self.ws.handshake = _SPENT_HANDSHAKE

    def _frame(self, message: str | bytes) -> bytes:
        event = TextMessage(data=message) if isinstance(message, str) \
            else BytesMessage(data=message)
        data: bytes = self.ws.send(event)
        return data

    def receive(self, timeout: float | None = None) -> Any:
        while self.connected and not self.input_buffer:
            try:
                data = self.sock.recv(self.receive_bytes)
            except OSError:
                data = b""
            if not data:
                self.connected = False
                break
            try:
                self.ws.receive_data(data)
                self.connected = self._handle_events()
            except Exception:  # a protocol error ends this connection, not the node
                self.connected = False
        if self.input_buffer:
            return self.input_buffer.pop(0)
        return None


class LeanWebSocketWSGI:
    """Engine.IO's websocket driver for gevent, with a :class:`LeanServer` per connection."""

    def __init__(self, handler: Callable[[Any], Any], server: Any):
        self.app = handler
        self.server = server

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        own = "gunicorn.socket" in environ
        if own:
            # The connection outlives gunicorn's request greenlet, whose deep stack would
            # otherwise be kept for as long as the dashboard stays: take its socket over
            # (the client sends nothing before the handshake's answer, so gunicorn's read
            # buffer holds nothing of it) and let the request finish.
            sock = environ["gunicorn.socket"]
            environ["gunicorn.socket"] = type(sock)(sock.family, sock.type, sock.proto,
                                                    fileno=sock.detach())
        self.lean = LeanServer(environ, self.server.start_background_task,
                               self.server.max_http_buffer_size)
        self.lean.own_greenlet = own
        ret = self.app(self)  # LeanSocket._websocket_handler
        if self.lean.mode == "gunicorn":
            raise StopIteration()
        if self.lean.mode == "werkzeug":
            raise ConnectionError()
        return ret


class Pinger:
    """Every connection's Engine.IO ping, from one greenlet per node.

    Every ping is due ``ping_interval`` after the pong before it, so the due times come in
    the order they are scheduled: a FIFO holds them, and the timer sleeps until the first.
    """

    def __init__(self, server: Any):
        self.server = server
        self.due: deque[tuple[float, Any]] = deque()
        self.wakeup = server.create_event()
        self.running = False

    def add(self, sock: Any) -> None:
        self.due.append((time.monotonic() + self.server.ping_interval, sock))
        if not self.running:
            self.running = True
            self.server.start_background_task(self.run)
        elif len(self.due) == 1:
            self.wakeup.set()

    def run(self) -> None:
        while True:
            if not self.due:
                self.wakeup.wait()
                self.wakeup.clear()
                continue
            at, sock = self.due[0]
            delay = at - time.monotonic()
            if delay > 0:
                self.server.sleep(delay)
                continue
            self.due.popleft()
            if not sock.closing and not sock.closed:
                sock.last_ping = time.time()
                sock.send(eio_packet.Packet(eio_packet.PING))


class LeanSocket(eio_socket.Socket):
    """An Engine.IO socket whose websocket writes through an :class:`Outbox` (no writer
    greenlet, no queue) and whose pings come from the node's :class:`Pinger`.

    Long-polling, and servers not set up by :func:`swarmdash.patches.install`, behave as
    the stock socket."""

    outbox: Outbox | None = None
    lean: LeanServer | None = None
    server: Any
    sid: str
    queue: Any
    last_ping: float | None
    connected: bool
    upgrading: bool
    upgraded: bool
    closing: bool
    closed: bool

    def send(self, pkt: Any) -> None:
        outbox = self.outbox
        if outbox is None:
            super().send(pkt)
        elif self.check_ping_timeout():
            outbox.write(outbox.frame(pkt.encode()))

    def schedule_ping(self) -> None:
        pinger: Pinger | None = getattr(self.server, PINGER_ATTR, None)
        if pinger is None:
            super().schedule_ping()
        elif self.last_ping:
            self.last_ping = None
            pinger.add(self)

    def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        if self.outbox is None:
            super().close(wait=wait, abort=abort, reason=reason)
            return
        if not self.closed and not self.closing:
            self.closing = True
            self.server._trigger_event(
                "disconnect", self.sid, reason or self.server.reason.SERVER_DISCONNECT,
                run_async=False)
            if not abort:
                self.send(eio_packet.Packet(eio_packet.CLOSE))
            self.closed = True
            assert self.lean is not None
            if not abort and self.lean.connected:
                with contextlib.suppress(Exception):
                    self.lean.close()  # the websocket close frame, behind the CLOSE packet
            self.outbox.end(abort)

    def _attach(self, lean: LeanServer) -> None:
        """Switch sending to the websocket: what waits in the queue first, in order."""
        outbox = lean.outbox
        while True:
            try:
                pkt = self.queue.get(block=False)
            except self.server.get_queue_empty_exception():
                break
            self.queue.task_done()
            if pkt is None:  # closed meanwhile
                break
            outbox.write(outbox.frame(pkt.encode()))
        self.lean = lean
        self.outbox = outbox
        self.queue = _SPENT_QUEUE
        self.upgraded = True
        self.upgrading = False

    def _websocket_handler(self, ws: Any) -> list[Any]:
        lean: LeanServer | None = getattr(ws, "lean", None)
        if lean is None:
            result: list[Any] = super()._websocket_handler(ws)
            return result
        if self.connected:  # an upgrade from long-polling
            self.upgrading = True
            probe = lean.receive()
            decoded = eio_packet.Packet(encoded_packet=probe) if probe else None
            if decoded is None or decoded.packet_type != eio_packet.PING \
                    or decoded.data != "probe":
                self.server.logger.info("%s: Failed websocket upgrade, no PING packet",
                                        self.sid)
                self.upgrading = False
                return []
            lean.outbox.write(lean.outbox.frame(
                eio_packet.Packet(eio_packet.PONG, data="probe").encode()))
            self.queue.put(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
            upgrade = lean.receive()
            decoded = eio_packet.Packet(encoded_packet=upgrade) if upgrade else None
            if decoded is None or decoded.packet_type != eio_packet.UPGRADE:
                self.server.logger.info("%s: Failed websocket upgrade, expected UPGRADE "
                                        "packet, received %s instead.", self.sid, upgrade)
                self.upgrading = False
                return []
        else:
            self.connected = True
        self._attach(lean)
        if lean.own_greenlet:  # a shallow greenlet reads from now on; the request ends
            self.server.start_background_task(self._read_loop, lean)
        else:
            self._read_loop(lean)
        return []

    def _read_loop(self, lean: LeanServer) -> None:
        reason = self.server.reason
        while True:
            data = lean.receive()
            if data is None:
                break
            try:
                self.receive(eio_packet.Packet(encoded_packet=data))
            except eio_exceptions.UnknownPacketError:
                pass
            except eio_exceptions.SocketIsClosedError:
                break
            except Exception:
                self.server.logger.exception("Unknown receive error")
                break
        self.close(wait=False, abort=True, reason=reason.TRANSPORT_CLOSE)
        lean.outbox.end(abort=True)
        lean.sock.close()
