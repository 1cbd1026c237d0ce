"""A minimal DNS responder for the local cluster: one name, the addresses of the running nodes.

In docker-compose, HAProxy finds the node replicas with ``server-template`` and Docker's
DNS (``node`` resolves to every replica). The local cluster runs the very same
``haproxy.cfg`` and answers the same question here: ``A <name>`` returns the addresses of
the nodes the cluster's state file lists as running, read on every query, so adding or
removing a node is seen by HAProxy at its next resolution. Anything else gets NXDOMAIN
(other names) or an empty answer (other record types). UDP only, loopback only.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
from collections.abc import Callable
from pathlib import Path

QTYPE_A = 1
QCLASS_IN = 1
RCODE_OK = 0
RCODE_FORMERR = 1
RCODE_NXDOMAIN = 3
TTL_SECONDS = 1


def parse_question(packet: bytes) -> tuple[int, int, str, int, int]:
    """(id, flags, name, qtype, end offset of the question) of a query; ValueError if bad."""
    if len(packet) < 12:
        raise ValueError("short header")
    qid, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        raise ValueError("one question expected")
    labels, pos = [], 12
    while True:
        if pos >= len(packet):
            raise ValueError("truncated name")
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        if length > 63:
            raise ValueError("compressed or bad label")
        labels.append(packet[pos:pos + length].decode("ascii", "replace"))
        pos += length
    if pos + 4 > len(packet):
        raise ValueError("truncated question")
    qtype, _qclass = struct.unpack("!HH", packet[pos:pos + 4])
    return qid, flags, ".".join(labels).lower(), qtype, pos + 4


def answer(packet: bytes, name: str, addresses: list[str]) -> bytes:
    """The response to ``packet``: A records of ``addresses`` if it asks for ``name``."""
    try:
        qid, flags, qname, qtype, end = parse_question(packet)
    except ValueError:
        qid = struct.unpack("!H", packet[:2])[0] if len(packet) >= 2 else 0
        return struct.pack("!HHHHHH", qid, 0x8000 | RCODE_FORMERR, 0, 0, 0, 0)
    question = packet[12:end]
    rd = flags & 0x0100
    if qname != name.lower().rstrip("."):
        return struct.pack("!HHHHHH", qid, 0x8400 | rd | RCODE_NXDOMAIN, 1, 0, 0, 0) + question
    records = b""
    count = 0
    if qtype == QTYPE_A:
        for addr in addresses:
            records += struct.pack("!HHHIH", 0xC00C, QTYPE_A, QCLASS_IN, TTL_SECONDS, 4)
            records += ipaddress.IPv4Address(addr).packed
            count += 1
    header = struct.pack("!HHHHHH", qid, 0x8400 | rd | RCODE_OK, 1, count, 0, 0)
    return header + question + records


def state_addresses(state_file: Path) -> list[str]:
    """Addresses of the running nodes in a local cluster's state file."""
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return []
    return [n["host"] for n in state.get("nodes", []) if n.get("running")]


def serve(host: str, port: int, name: str, addresses: Callable[[], list[str]],
          ready: Callable[[], None] | None = None) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    if ready:
        ready()
    while True:
        packet, peer = sock.recvfrom(4096)
        sock.sendto(answer(packet, name, addresses()), peer)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m swarmdash.cluster.dns", description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:8053", help="host:port (UDP)")
    p.add_argument("--name", required=True, help="the name that resolves to the nodes")
    p.add_argument("--state", type=Path, required=True, help="the local cluster's state file")
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    serve(host, int(port), args.name, lambda: state_addresses(args.state),
          ready=lambda: print(f"dns {args.name} on udp {args.listen}", flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
