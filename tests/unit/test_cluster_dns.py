"""The local cluster's DNS responder: what HAProxy's resolver asks, what it is told."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import dns.message
import dns.rdatatype

from swarmdash.cluster.dns import answer, serve, state_addresses

NAME = "nodes.swarmdash.local"


def query(name: str, qtype: int = 1, qid: int = 0xBEEF) -> bytes:
    """A query as HAProxy's resolver sends it: recursion desired, EDNS with a large payload."""
    q = dns.message.make_query(name, qtype, use_edns=0, payload=8192)
    q.id = qid
    return q.to_wire()


def parse_answers(resp: bytes) -> tuple[int, int, list[str]]:
    """(id, rcode, addresses of the A records) of a response."""
    message = dns.message.from_wire(resp)
    addrs = [r.to_text() for rrset in message.answer for r in rrset
             if rrset.rdtype == dns.rdatatype.A]
    return message.id, message.rcode(), addrs


def test_a_query_gets_every_running_node() -> None:
    qid, rcode, addrs = parse_answers(answer(query(NAME), NAME, ["127.0.1.1", "127.0.1.2"]))
    assert (qid, rcode, addrs) == (0xBEEF, 0, ["127.0.1.1", "127.0.1.2"])


def test_names_are_case_insensitive_and_other_types_get_no_records() -> None:
    assert parse_answers(answer(query(NAME.upper()), NAME, ["127.0.1.1"]))[2] == ["127.0.1.1"]
    assert parse_answers(answer(query(NAME, qtype=28), NAME, ["127.0.1.1"]))[1:] == (0, [])


def test_other_names_are_nxdomain_and_garbage_is_formerr() -> None:
    assert parse_answers(answer(query("other.local"), NAME, ["127.0.1.1"]))[1] == 3
    resp = answer(b"\x00\x07garbage", NAME, [])
    assert int.from_bytes(resp[:2]) == 7 and resp[3] & 0x0F == 1


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
