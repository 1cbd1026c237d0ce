"""Where the local cluster's processes listen, and how many nodes it may run.

Apart from :mod:`swarmdash.cluster.local` so that building the command line imports no
HTTP client (and no ssl) before ``serve`` and ``demo`` patch for their engine.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Node slots in HAProxy's server-template: the most nodes the local cluster can run.
MAX_NODES = 10
#: ``--redis``: one redis-server, or a primary, two replicas and three sentinels.
REDIS_MODES = ("single", "sentinel")


@dataclass
class Ports:
    plain: int = 8050   # HAProxy, plain HTTP (no redirect)
    https: int = 8443   # HAProxy, TLS
    http: int = 8080    # HAProxy, plain HTTP redirected to HTTPS
    stats: int = 8404   # HAProxy stats page and Prometheus exporter
    dns: int = 8053     # the local DNS responder (UDP)
    redis: int = 6390  # with --redis sentinel: the servers on redis, redis+1, redis+2
    node: int = 8050    # every node, each on its own loopback address
    prometheus: int = 9090
    sentinel: int = 26390  # with --redis sentinel: sentinel, sentinel+1, sentinel+2
