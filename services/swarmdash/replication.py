"""What a node sees of Redis replication and Sentinel, exported as metrics.

Each heartbeat the node asks the primary for ``INFO replication`` (replicas online, how far
behind the slowest one is) and, with a ``redis+sentinel://`` URL, asks the sentinels which
server is the primary (a change counts as a failover), which replicas they consider down,
and whether they can still authorize a failover (``SENTINEL CKQUORUM``). The alert rules
in infra/prometheus/alerts.yml are built on these gauges.
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from . import metrics
from .redisconn import connect, is_sentinel, sentinel_of
from .settings import parse_sentinel_url

log = logging.getLogger(__name__)


def replication_lag(info: dict[str, Any]) -> tuple[int, float, int]:
    """(replicas online, seconds since the slowest one's last ack, bytes it lacks) from the
    primary's ``INFO replication``."""
    offset = int(info.get("master_repl_offset", 0))
    online = [v for k, v in info.items()
              if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"]
    if not online:
        return 0, 0.0, 0
    return (len(online), float(max(int(v.get("lag", 0)) for v in online)),
            max(0, offset - min(int(v.get("offset", 0)) for v in online)))


class ReplicationMonitor:
    def __init__(self, url: str, timeout: float):
        self.conn = connect(url, timeout, max_connections=1)
        self.sentinel = None
        self.service = ""
        if is_sentinel(url):
            parsed = parse_sentinel_url(url)
            self.sentinel = sentinel_of(parsed, timeout)
            self.service = parsed.service
            metrics.SENTINELS_CONFIGURED.set(len(parsed.sentinels))
        self.primary: tuple[str, int] | None = None

    def poll(self) -> None:
        """Refresh the gauges; a part that cannot be read leaves its gauges as they were."""
        if self.sentinel is not None:
            self._poll_sentinels()
        try:
            info = self.conn.info("replication")
        except redis.RedisError as exc:
            log.debug("INFO replication failed: %s", exc)
            return
        online, lag_s, lag_bytes = replication_lag(info)
        if self.sentinel is None:
            metrics.REDIS_REPLICAS.labels(state="online").set(online)
        metrics.REDIS_REPLICATION_LAG.set(lag_s)
        metrics.REDIS_REPLICATION_LAG_BYTES.set(lag_bytes)

    def _poll_sentinels(self) -> None:
        assert self.sentinel is not None
        answering: list[redis.Redis] = []
        for client in self.sentinel.sentinels:
            try:
                client.ping()
                answering.append(client)
            except redis.RedisError:
                continue
        metrics.SENTINELS_REACHABLE.set(len(answering))
        if not answering:
            metrics.SENTINEL_QUORUM.set(0)
            return
        asked = answering[0]
        try:
            addr: Any = asked.sentinel_get_master_addr_by_name(self.service)
            primary = (str(addr[0]), int(addr[1])) if addr else None
            if primary and self.primary and primary != self.primary:
                metrics.REDIS_PRIMARY_CHANGES.inc()
                log.warning("Redis primary moved from %s:%d to %s:%d (Sentinel failover)",
                            *self.primary, *primary)
            self.primary = primary or self.primary
            replicas = asked.sentinel_slaves(self.service)
            down = sum(1 for r in replicas if r.get("is_sdown") or r.get("is_odown")
                       or r.get("is_disconnected"))
            metrics.REDIS_REPLICAS.labels(state="online").set(len(replicas) - down)
            metrics.REDIS_REPLICAS.labels(state="down").set(down)
        except redis.RedisError as exc:
            log.debug("Sentinel query failed: %s", exc)
        try:
            asked.execute_command("SENTINEL", "CKQUORUM", self.service)
            metrics.SENTINEL_QUORUM.set(1)
        except redis.ResponseError:  # NOQUORUM: not enough sentinels to fail over
            metrics.SENTINEL_QUORUM.set(0)
        except redis.RedisError as exc:
            log.debug("SENTINEL CKQUORUM failed: %s", exc)

    def close(self) -> None:
        self.conn.close()
        if self.sentinel is not None:
            self.sentinel.close()
