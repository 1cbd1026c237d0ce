"""A room's packet is encoded once, to the very text python-socketio would send."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest
import socketio
from socketio import packet as sio_packet

from swarmdash import codec, wsframes
from swarmdash.fanout import Fanout
from swarmdash.wsconn import Outbox

PAYLOADS: list[Any] = [
    {"type": "log", "swarm": "s", "batch": [{"id": "1-0", "data": {"message": "é ☃ \u2028"}}],
     "count": 1, "timestamp": 1764523423.125, "cursor": "1-0;log=0-5"},
    {"batch": [], "agent_id": None, "nested": [[1, 2.5, True, False, None]]},
    {"big": 2**70, "negative": -(2**63), "tiny": 1e-300},  # beyond 64 bits: the stdlib path
    {"key with \"quotes\"": "line\nbreak\ttab\\", "": ""},
]


@pytest.fixture
def server() -> socketio.Server:
    return socketio.Server(json=codec, async_mode="threading")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_room_packet_is_the_one_python_socketio_encodes(server: socketio.Server,
                                                           payload: Any) -> None:
    stock = server.packet_class(sio_packet.EVENT, namespace="/",
                                data=["log_update_batch", payload]).encode()
    encoded = Fanout(server).encode("log_update_batch", payload)
    assert encoded == stock
    decoded = sio_packet.Packet(encoded_packet=encoded)
    assert decoded.data == ["log_update_batch", payload]


def test_a_packet_class_with_an_encoding_of_its_own_is_used(server: socketio.Server) -> None:
    class Tagged(server.packet_class):  # type: ignore[name-defined, misc]
        def encode(self) -> str:
            return "2" + '["tagged"]'

    server.packet_class = Tagged
    assert Fanout(server).encode("agent_update_batch", {"batch": []}) == '2["tagged"]'


# --- room streams: what a client that keeps its inflate window decodes ------------------

class _Wire:
    """The socket under an outbox: keeps every byte written."""

    def __init__(self) -> None:
        self.data = bytearray()

    def send(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def sendmsg(self, buffers: list[bytes]) -> int:
        for b in buffers:
            self.data += b
        return sum(len(b) for b in buffers)


class _Holder:
    def __init__(self, **attrs: Any):
        self.__dict__.update(attrs)


class Client:
    """A member as a browser or ws sees it: frames off the wire, one inflater for the life
    of the connection (context takeover), uncompressed frames left out of its window."""

    def __init__(self, fanout: Fanout, *rooms: str, style: int | None = wsframes.STREAM):
        self.fanout = fanout
        server = fanout.server
        self.wire = _Wire()
        self.outbox = Outbox(_Holder(_sock=self.wire), style, lambda *_a: None,
                             lambda _m: b"")
        self.eio_sid = f"eio-{id(self)}"
        self.sid = server.manager.connect(self.eio_sid, "/")
        server.eio.sockets[self.eio_sid] = _Holder(outbox=self.outbox)
        self.inflater = zlib.decompressobj(-15)
        self.read = 0
        self.fresh_per_message = style != wsframes.STREAM
        for room in rooms:
            self.join(room)

    def join(self, room: str) -> None:
        """Enter ``room`` as the relay makes a subscriber enter it."""
        self.fanout.server.manager.enter_room(self.sid, "/", room)
        self.fanout.joined(room)

    def messages(self) -> list[tuple[bool, str]]:
        """(compressed, text) of every whole message since the last call."""
        out = []
        data = bytes(self.wire.data)
        while self.read + 2 <= len(data):
            first, length = data[self.read], data[self.read + 1] & 0x7F
            at = self.read + 2
            if length == 126:
                length, at = int.from_bytes(data[at:at + 2], "big"), at + 2
            elif length == 127:
                length, at = int.from_bytes(data[at:at + 8], "big"), at + 8
            payload = data[at:at + length]
            self.read = at + length
            compressed = bool(first & 0x40)
            if compressed:
                inflater = zlib.decompressobj(-15) if self.fresh_per_message else self.inflater
                payload = inflater.decompress(payload + b"\x00\x00\xff\xff")
            out.append((compressed, payload.decode()))
        return out


def texts(client: Client) -> list[str]:
    return [text for _, text in client.messages()]


def batch(i: int) -> dict[str, Any]:
    return {"type": "log", "swarm": "s", "cursor": f"{i}-0",
            "batch": [{"id": f"{i}-{k}", "type": "log", "agent_id": f"agent-{k}",
                       "data": {"level": "info", "message": f"step {i} of agent {k}"}}
                      for k in range(20)]}


def sent(fanout: Fanout, room: str, i: int) -> str:
    """Emit batch ``i`` to ``room``; the message every member must read."""
    fanout.emit(room, "log_update_batch", batch(i))
    return "4" + fanout.encode("log_update_batch", batch(i))


@pytest.fixture(params=["zlib-ng", "zlib"])
def fanout(server: socketio.Server, request: pytest.FixtureRequest,
           monkeypatch: pytest.MonkeyPatch) -> Fanout:
    """A fan-out whose room streams are made by zlib-ng (the default) or by zlib (where
    zlib-ng has no wheel); the members inflate with zlib either way, as clients do."""
    if request.param == "zlib":
        monkeypatch.setattr(wsframes, "STREAM_ZLIB", zlib)
    return Fanout(server)


def test_room_streams_are_compressed_by_zlib_ng() -> None:
    zlib_ng = pytest.importorskip("zlib_ng.zlib_ng")
    assert wsframes.STREAM_ZLIB is zlib_ng, "a declared dependency: the faster compressor"


def test_a_room_stream_is_compressed_once_and_decodes_for_every_member(
        fanout: Fanout) -> None:
    a, b = Client(fanout, "r"), Client(fanout, "r")
    expected = [sent(fanout, "r", i) for i in range(6)]
    assert a.wire.data == b.wire.data, "one stream, the same bytes for both"
    assert texts(a) == expected and texts(b) == expected
    later = len(a.wire.data)
    sent(fanout, "r", 6)
    alone = len(wsframes.text_frame("4" + fanout.encode("log_update_batch", batch(6)), 15))
    assert len(a.wire.data) - later < alone * 0.8, "a batch refers back to the earlier ones"


def test_a_member_that_joins_later_starts_at_a_reset_point(fanout: Fanout) -> None:
    first, late = Client(fanout, "r"), Client(fanout)
    early = [sent(fanout, "r", i) for i in range(3)]
    late.join("r")
    rest = [sent(fanout, "r", i) for i in range(3, 6)]
    assert texts(first) == early + rest
    received = late.messages()
    assert [text for _, text in received] == rest
    assert all(compressed for compressed, _ in received), "it follows the stream at once"


def test_a_member_of_two_rooms_follows_one_and_gets_the_other_uncompressed(
        fanout: Fanout) -> None:
    both = Client(fanout, "a")
    only_b = Client(fanout, "b")
    both.join("b")
    expected = []
    for i in range(4):
        expected.append(sent(fanout, "a", i))
        expected.append(sent(fanout, "b", 100 + i))
    received = both.messages()
    assert [text for _, text in received] == expected
    from_b = ['"cursor":"10' in text for _, text in received]
    assert [compressed for compressed, _ in received] == [not b for b in from_b], \
        "a's stream compressed, b's messages uncompressed"
    assert texts(only_b) == expected[1::2]


def test_large_and_small_messages_of_one_member_keep_its_stream_decodable(
        fanout: Fanout) -> None:
    member, other = Client(fanout, "r"), Client(fanout, "r")
    expected = [sent(fanout, "r", 0)]
    ping, replay = "2", "43" + json.dumps([{"ok": True, "replay": [batch(i) for i in range(9)]}])
    for private in (ping, replay):
        member.outbox.write(member.outbox.frame(private))
        expected.append(private)
        expected.append(sent(fanout, "r", len(expected)))
    received = member.messages()
    assert [text for _, text in received] == expected
    assert [c for c, text in received if text in (ping, replay)] == [False, True], \
        "a ping goes uncompressed, a large replay compressed on its own"
    assert all(c for c, text in received if text not in (ping, replay)), \
        "after either, the member still gets the room's stream"
    assert texts(other) == [t for t in expected if t not in (ping, replay)]


def test_leaving_a_room_frees_a_member_to_follow_another(fanout: Fanout) -> None:
    mover, _stays_a, stays_b = Client(fanout, "a"), Client(fanout, "a"), Client(fanout, "b")
    expected = [sent(fanout, "a", 0), sent(fanout, "b", 1)]
    fanout.left("a", mover.sid)
    fanout.server.manager.leave_room(mover.sid, "/", "a")
    mover.join("b")
    expected += [sent(fanout, "b", i) for i in range(2, 5)]
    received = mover.messages()
    assert [text for _, text in received] == expected[:1] + expected[2:]
    assert all(compressed for compressed, _ in received[1:]), "it follows b's stream now"
    assert texts(stays_b) == expected[1:]


def test_a_client_without_context_takeover_gets_each_message_on_its_own(
        fanout: Fanout) -> None:
    streaming, fresh = Client(fanout, "r"), Client(fanout, "r", style=15)
    expected = [sent(fanout, "r", i) for i in range(4)]
    assert texts(fresh) == expected and texts(streaming) == expected
    fanout.closed("r")
    assert fanout.streams == {}
