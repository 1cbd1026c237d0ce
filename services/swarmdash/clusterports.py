"""Where the local cluster's processes listen, and how many nodes it may run.

Apart from :mod:`swarmdash.localcluster` so that building the command line imports no
HTTP client (and no ssl) before ``serve`` and ``demo`` patch for their engine.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Node slots in HAProxy's server-template: the most nodes the local cluster can run.
MAX_NODES = 10


@dataclass
class Ports:
    plain: int = 8050   # HAProxy, plain HTTP (no redirect)
    https: int = 8443   # HAProxy, TLS
    http: int = 8080    # HAProxy, plain HTTP redirected to HTTPS
    stats: int = 8404   # HAProxy stats page and Prometheus exporter
    dns: int = 8053     # the local DNS responder (UDP)
    redis: int = 6390
    node: int = 8050    # every node, each on its own loopback address
    prometheus: int = 9090
