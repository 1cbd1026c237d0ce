"""A minimal DNS responder for the local cluster: one name, the addresses of the running nodes.

In docker-compose, HAProxy finds the node replicas with ``server-template`` and Docker's
DNS (``node`` resolves to every replica). The local cluster runs the very same
``haproxy.cfg`` and answers the same question here: ``A <name>`` returns the addresses of
the nodes the cluster's state file lists as running, read on every query, so adding or
removing a node is seen by HAProxy at its next resolution. Anything else gets NXDOMAIN
(other names) or an empty answer (other record types). UDP only, loopback only; the
messages are read and written with dnspython.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

TTL_SECONDS = 1


def answer(packet: bytes, name: str, addresses: list[str]) -> bytes:
    """The response to ``packet``: A records of ``addresses`` if it asks for ``name``."""
    try:
        query = dns.message.from_wire(packet)
        question = query.question[0]
    except (dns.exception.DNSException, IndexError):
        refusal = dns.message.Message(int.from_bytes(packet[:2]) if len(packet) >= 2 else 0)
        refusal.flags = dns.flags.QR
        refusal.set_rcode(dns.rcode.FORMERR)
        return refusal.to_wire()
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if question.name != dns.name.from_text(name):
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif question.rdtype == dns.rdatatype.A and addresses:
        response.answer.append(dns.rrset.from_text_list(question.name, TTL_SECONDS, "IN", "A",
                                                        addresses))
    return response.to_wire(want_shuffle=False)  # in the state file's order


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
