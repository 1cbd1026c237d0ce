"""The store watch: does this node reach Redis, and when it does not, is it alone?

A background loop pings Redis every ``STORE_CHECK_INTERVAL`` on the health connections,
unless the relay's read of the log was answered within half that interval
(``answered_at``): a node that reads events already knows Redis answers, and skips the
ping (a path cut silently just after such an answer is pinged at the next round). During an
outage it always pings. When a ping fails, the node asks its peers (the last live nodes the
cluster registry listed, remembered because the registry itself is in Redis) whether *they*
reach Redis now, with a fresh ping of their own (``GET /health/redis``):

- a peer answers yes: this node alone lost Redis (``scope`` ``node``). ``/health`` answers
  503, the proxy takes the node out and its clients resume on a node that still gets events;
- no peer answers yes within ``PEER_CHECK_TIMEOUT`` (they say no, or say nothing): Redis
  is away for everyone (``scope`` ``cluster``). Moving clients would gain nothing, so
  ``/health`` stays 200 (``degraded``) for ``REDIS_OUTAGE_GRACE`` seconds: the proxy keeps
  every node and every session, and the dashboards are told (``store_status``).

A node that has not reached Redis since it started has no sessions to keep and no peer
list: it answers 503. Past the grace a cluster-wide outage answers 503 too, so Redis gone
for good shows as an outage everywhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import requests

from . import metrics

log = logging.getLogger(__name__)

#: The Socket.IO event that tells dashboards whether the store is available.
STORE_STATUS_EVENT = "store_status"
#: Where a node asks a peer whether it reaches Redis (a fresh ping).
PEER_PATH = "/health/redis"
SCOPES = ("cluster", "node")


@dataclass(frozen=True)
class Outage:
    """Redis unreachable from this node since ``since`` (epoch seconds)."""

    since: float
    scope: str  # "cluster": every node; "node": this node alone (SCOPES)


def ask_peer(address: str, timeout: float) -> bool:
    """True when the node at ``address`` (host:port) answers that it reaches Redis now."""
    try:
        res = requests.get(f"http://{address}{PEER_PATH}", timeout=timeout)
        return res.status_code == 200 and res.json().get("redis") == "ok"
    except (requests.RequestException, ValueError, AttributeError):
        return False


@dataclass(eq=False)
class StoreWatch:
    ping: Callable[[], bool]  # a fresh ping on the health connections
    peers: Callable[[], Iterable[str]]  # the other live nodes' addresses
    _: KW_ONLY
    grace: float  # REDIS_OUTAGE_GRACE
    peer_timeout: float  # PEER_CHECK_TIMEOUT
    ping_timeout: float  # REDIS_TIMEOUT
    notify: Callable[[dict[str, Any]], None] = lambda status: None
    on_back: Callable[[], None] = lambda: None
    ask: Callable[[str, float], bool] = ask_peer
    clock: Callable[[], float] = time.time
    #: time.monotonic() of the last answer Redis gave another reader of this node (the
    #: relay), and how recent it must be to stand for a ping (0: always ping).
    answered_at: Callable[[], float] = lambda: 0.0
    answer_counts_for: float = 0.0
    checked: bool = field(default=False, init=False)
    reached: bool = field(default=False, init=False)  # Redis answered at least once since start
    outage: Outage | None = field(default=None, init=False)

    # --- one round ------------------------------------------------------------------------
    def check(self) -> None:
        """Ping Redis; on a failure, find out whether this node is alone."""
        started = time.monotonic()
        if (self.outage is None and self.reached
                and started - self.answered_at() < self.answer_counts_for):
            self.checked = True  # the relay's read was answered just now: no ping needed
            return
        ok = self.ping()
        took = time.monotonic() - started
        if not ok and self._someone_else_reaches_it():
            # Is Redis back for everyone just now, or is this node alone? Ping once more when
            # that is cheap or likely: a failure well before REDIS_TIMEOUT is a refused or
            # reset connection (one a Redis restart broke, or Redis back just after it), and
            # a peer reaching Redis during an outage everyone saw means it is coming back.
            # A first silent failure is not retried: this node would stay in the pool for
            # another REDIS_TIMEOUT while its clients get nothing.
            retry = (took < self.ping_timeout / 2
                     or (self.outage is not None and self.outage.scope == "cluster"))
            ok = retry and self.ping()
            scope = "node"
        else:
            scope = "cluster"
        if ok:
            self.checked = self.reached = True
            if self.outage is not None:
                log.warning("Redis reachable again after %.1f s", self.clock() - self.outage.since)
                self.outage = None
                self._gauge(None)
                self.notify(self.status())
                self.on_back()
            return
        since = self.outage.since if self.outage else self.clock()
        changed = self.outage is None or self.outage.scope != scope
        self.outage = Outage(since, scope)
        self.checked = True
        if changed:
            log.warning("Redis unreachable from this node (%s)", "this node alone"
                        if scope == "node" else "every node: keeping the sessions open")
            self._gauge(scope)
            self.notify(self.status())

    def _someone_else_reaches_it(self) -> bool:
        return any(self.ask(address, self.peer_timeout) for address in self.peers())

    def _gauge(self, scope: str | None) -> None:
        for name in SCOPES:
            metrics.REDIS_OUTAGE.labels(scope=name).set(1 if name == scope else 0)

    # --- what it found ------------------------------------------------------------------
    @property
    def available(self) -> bool:
        return self.outage is None

    def healthy(self) -> bool:
        """Whether this node belongs in the proxy's pool (what ``/health`` answers)."""
        if self.outage is None:
            return True
        return (self.reached and self.outage.scope == "cluster"
                and self.clock() - self.outage.since < self.grace)

    def status(self) -> dict[str, Any]:
        """The ``store_status`` payload, also in ``/health`` under ``outage``."""
        if self.outage is None:
            return {"available": True}
        return {"available": False, "scope": self.outage.scope,
                "since": round(self.outage.since, 3),
                "for": round(max(0.0, self.clock() - self.outage.since), 3),
                "grace": self.grace}


def peer_addresses(records: Iterable[dict[str, Any]], me: str) -> list[str]:
    """The addresses of the live nodes other than ``me`` (from the registry's records)."""
    return [str(rec["address"]) for rec in records
            if rec.get("address") and rec.get("node") != me]
