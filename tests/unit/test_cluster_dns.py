"""The local cluster's DNS responder: what HAProxy's resolver asks, what it is told."""

from __future__ import annotations

import json
import socket
import struct
import threading
from pathlib import Path

from swarmdash.cluster.dns import answer, parse_question, serve, state_addresses

NAME = "nodes.swarmdash.local"


def query(name: str, qtype: int = 1, qid: int = 0xBEEF, edns: bool = True) -> bytes:
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    q += struct.pack("!HH", qtype, 1)
    if edns:  # an OPT record, as HAProxy sends with accepted_payload_size
        q += b"\x00" + struct.pack("!HHIH", 41, 8192, 0, 0)
    return q


def parse_answers(resp: bytes) -> tuple[int, int, list[str]]:
    qid, flags, _qd, ancount, _ns, _ar = struct.unpack("!HHHHHH", resp[:12])
    *_, end = parse_question(resp)
    addrs, pos = [], end
    for _ in range(ancount):
        _ptr, rtype, _cls, _ttl, length = struct.unpack("!HHHIH", resp[pos:pos + 12])
        assert rtype == 1 and length == 4
        addrs.append(socket.inet_ntoa(resp[pos + 12:pos + 16]))
        pos += 12 + length
    return qid, flags & 0x000F, addrs


def test_a_query_gets_every_running_node() -> None:
    qid, rcode, addrs = parse_answers(answer(query(NAME), NAME, ["127.0.1.1", "127.0.1.2"]))
    assert (qid, rcode, addrs) == (0xBEEF, 0, ["127.0.1.1", "127.0.1.2"])


def test_names_are_case_insensitive_and_other_types_get_no_records() -> None:
    assert parse_answers(answer(query(NAME.upper()), NAME, ["127.0.1.1"]))[2] == ["127.0.1.1"]
    assert parse_answers(answer(query(NAME, qtype=28), NAME, ["127.0.1.1"]))[1:] == (0, [])


def test_other_names_are_nxdomain_and_garbage_is_formerr() -> None:
    assert parse_answers(answer(query("other.local"), NAME, ["127.0.1.1"]))[1] == 3
    resp = answer(b"\x00\x07garbage", NAME, [])
    assert struct.unpack("!H", resp[:2])[0] == 7 and resp[3] & 0x0F == 1


def test_addresses_come_from_the_state_file(tmp_path: Path) -> None:
    state = tmp_path / "cluster.json"
    assert state_addresses(state) == []
    state.write_text(json.dumps({"nodes": [{"host": "127.0.1.1", "running": True},
                                           {"host": "127.0.1.2", "running": False}]}))
    assert state_addresses(state) == ["127.0.1.1"]
    state.write_text("{torn")
    assert state_addresses(state) == []


def test_serves_over_udp() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ready = threading.Event()
    threading.Thread(target=serve, args=("127.0.0.1", port, NAME, lambda: ["127.0.1.9"]),
                     kwargs={"ready": ready.set}, daemon=True).start()
    assert ready.wait(5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(query(NAME, qid=42), ("127.0.0.1", port))
        assert parse_answers(s.recv(512)) == (42, 0, ["127.0.1.9"])
