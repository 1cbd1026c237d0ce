"""``python -m bench.profile`` puts each py-spy sample in the part of the path it belongs to.

zlib's compression runs in C, which py-spy does not see: its time shows as the Python frame
that calls it. A room stream's frame() must count as permessage-deflate, not as a socket
write (its module also builds frames for the writes)."""

from __future__ import annotations

from bench.profile import REST, classify

RELAY = "Relay._read_loop (swarmdash/relay.py:107);Relay._emit (swarmdash/relay.py:205)"


def test_a_room_streams_compression_counts_as_deflate() -> None:
    stack = (f"{RELAY};Fanout.emit (swarmdash/fanout.py:71);"
             "RoomStream.frame (swarmdash/wsframes.py:113)")
    assert classify(stack) == "permessage-deflate"


def test_a_frame_header_and_a_write_count_as_socket_writes() -> None:
    assert classify(f"{RELAY};Fanout.emit (swarmdash/fanout.py:76);"
                    "_header (swarmdash/wsframes.py:68)") == "socket writes"
    assert classify(f"{RELAY};Outbox._send (swarmdash/wsconn.py:148)") == "socket writes"


def test_the_innermost_known_part_wins_and_the_unknown_is_the_rest() -> None:
    assert classify(f"{RELAY};Room.offer (swarmdash/batching.py:80)") == (
        "relay: room batches and fan-out")
    assert classify("Hub.run (gevent/hub.py:647)") == REST
