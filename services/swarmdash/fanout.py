"""A room's message to each of its members on this node: encoded once, framed once.

The relay's emits skip python-socketio's per-recipient path. The Socket.IO packet is
encoded once; a member whose websocket writes through an outbox (:mod:`swarmdash.wsconn`)
gets the frame built once for its framing (plain or shared deflate), written straight to
its socket or behind what it already waits for. Any other member (long-polling, the
threading and eventlet engines, per-client deflate) gets the one Engine.IO packet through
its socket's stock queue, as python-socketio would have sent it. Everything is local to
this node, as an emit with ``ignore_queue=True``.
"""

from __future__ import annotations

from typing import Any

from engineio import packet as eio_packet
from socketio import packet as sio_packet

from .wsconn import corked
from .wsframes import STREAM, UNCACHED, RoomStream, text_frame

NAMESPACE = "/"
_EVENT = str(sio_packet.EVENT)

__all__ = ["Fanout", "corked"]


class Fanout:
    def __init__(self, server: Any):
        self.server = server  # python-socketio Server
        self.streams: dict[str, RoomStream] = {}  # room -> its deflate stream

    def encode(self, event: str, payload: Any) -> str:
        """The Socket.IO EVENT packet of ``event``, as ``packet_class(...).encode()`` makes
        it for the default namespace. The payload is JSON read from the store and cursors,
        never bytes, so python-socketio's walk of the whole payload looking for binary
        attachments (the costliest part of encoding a large batch) is skipped."""
        packet_class = self.server.packet_class
        if packet_class.encode is not sio_packet.Packet.encode:  # an encoding of its own
            encoded: str = packet_class(sio_packet.EVENT, namespace=NAMESPACE,
                                        data=[event, payload]).encode()
            return encoded
        return _EVENT + packet_class.json.dumps([event, payload], separators=(",", ":"))

    def emit(self, room: str, event: str, payload: Any) -> int:
        """Send ``event`` to every member of ``room``; return how many there were."""
        participants = self.server.manager.rooms.get(NAMESPACE, {}).get(room)
        if not participants:
            return 0
        encoded = self.encode(event, payload)
        message = "4" + encoded  # the Engine.IO MESSAGE packet as a websocket carries it
        eio_pkt = None
        frames: dict[int | None, bytes] = {}
        stream = self.streams.get(room)
        adopt = stream is None or stream.reset  # this message can be a reset point
        stream_frame = None
        sockets = self.server.eio.sockets
        send_packet = self.server._send_eio_packet
        for eio_sid in list(participants.values()):
            outbox = getattr(sockets.get(eio_sid), "outbox", None)
            if outbox is not None:
                style = outbox.style
                if style == STREAM:
                    following = outbox.stream
                    if following is None and adopt:
                        if stream is None:
                            stream = self.streams[room] = RoomStream()
                        following = outbox.stream = stream
                    if following is not None and following is stream:
                        if stream_frame is None:
                            stream_frame = stream.frame(message)
                        outbox.write(stream_frame)
                        continue
                    style = None  # it follows another room's stream: uncompressed here
                elif style == UNCACHED:
                    outbox.write(outbox.frame(message))
                    continue
                frame = frames.get(style)
                if frame is None:
                    frame = frames[style] = text_frame(message, style)
                outbox.write(frame)
            else:
                if eio_pkt is None:
                    eio_pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
                send_packet(eio_sid, eio_pkt)
        return len(participants)

    def joined(self, room: str) -> None:
        """A member joined ``room``: its stream's next message is a reset point, where the
        newcomer starts following."""
        stream = self.streams.get(room)
        if stream is not None:
            stream.reset = True

    def left(self, room: str, sid: str) -> None:
        """``sid`` left ``room``: if it followed the room's stream it follows none now (and
        may start on another room's at its next reset point)."""
        stream = self.streams.get(room)
        if stream is None:
            return
        eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        outbox = getattr(self.server.eio.sockets.get(eio_sid), "outbox", None)
        if outbox is not None and outbox.stream is stream:
            outbox.stream = None

    def closed(self, room: str) -> None:
        """``room`` has no members left on this node: its stream goes."""
        self.streams.pop(room, None)
