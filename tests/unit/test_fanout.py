"""A room's packet is encoded once, to the very text python-socketio would send."""

from __future__ import annotations

from typing import Any

import pytest
import socketio
from socketio import packet as sio_packet

from swarmdash import codec
from swarmdash.fanout import Fanout

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
