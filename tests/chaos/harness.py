"""One chaos scenario: clients subscribed through the proxy, a steady publisher, a fault,
the recovery, then the accounting of what was accepted against what every client got."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests

from swarmdash.cluster.local import LocalCluster
from tests.helpers import wait_for

from .clientpool import ClientPool
from .ingest_feed import IngestFeed, Tally


@dataclass(frozen=True)
class Sizes:
    name: str
    clients: int
    rate: float        # events per second, all swarms together
    swarms: int
    processes: int     # Node.js processes holding the clients
    batch: int         # events per request in steady state
    pause_s: float     # Redis frozen (SIGSTOP), and one node cut off from Redis
    offline_s: float   # a client away from the network
    offline_clients: int

    @classmethod
    def from_env(cls) -> Sizes:
        """SWARMDASH_CHAOS=full: the documented size; anything else the CI size."""
        if os.environ.get("SWARMDASH_CHAOS", "ci") == "full":
            return cls("full", clients=200, rate=200, swarms=4, processes=4, batch=5,
                       pause_s=10, offline_s=30, offline_clients=10)
        return cls("ci", clients=30, rate=40, swarms=3, processes=2, batch=2,
                   pause_s=10, offline_s=20, offline_clients=3)


#: Counters scraped from every node's /metrics before and after a scenario.
COUNTERS = ("swarmdash_redis_errors_total", "swarmdash_ingest_rejected_total",
            "swarmdash_subscribe_total", "swarmdash_slow_consumer_drops_total")


def scrape(cluster: LocalCluster) -> dict[str, tuple[int | None, dict[str, float]]]:
    """node -> (pid, {sample: value}) for the error counters of every reachable node."""
    out: dict[str, tuple[int | None, dict[str, float]]] = {}
    for node in cluster.running_nodes():
        try:
            text = requests.get(f"{cluster.node_url(node)}/metrics", timeout=5).text
        except requests.RequestException:
            continue
        samples = {}
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name.startswith(COUNTERS) and not name.split("{")[0].endswith("_created"):
                samples[name] = float(value)
        out[node.name] = (node.pid, samples)
    return out


def counter_delta(before: dict[str, tuple[int | None, dict[str, float]]],
                  after: dict[str, tuple[int | None, dict[str, float]]]) -> dict[str, float]:
    """Sum over nodes of what each counter grew by; a restarted node counts from zero."""
    total: dict[str, float] = {}
    for node, (pid, samples) in after.items():
        old_pid, old = before.get(node, (None, {}))
        base = old if old_pid == pid else {}
        for name, value in samples.items():
            grew = value - base.get(name, 0.0)
            if grew > 0:
                total[name] = total.get(name, 0.0) + grew
    return total


def summarize_counters(delta: dict[str, float]) -> str:
    def pick(prefix: str, label: str) -> dict[str, int]:
        found = {}
        for name, value in delta.items():
            if name.startswith(prefix) and f'{label}="' in name:
                found[name.split(f'{label}="')[1].split('"')[0]] = int(value)
        return found

    parts = []
    redis_errors = pick("swarmdash_redis_errors_total", "component")
    if redis_errors:
        parts.append("redis_err " + ",".join(f"{k}={v}" for k, v in sorted(redis_errors.items())))
    rejected = pick("swarmdash_ingest_rejected_total", "reason")
    if rejected:
        parts.append("rejected " + ",".join(f"{k}={v}" for k, v in sorted(rejected.items())))
    refused = {k: v for k, v in pick("swarmdash_subscribe_total", "outcome").items() if k != "ok"}
    if refused:
        parts.append("sub " + ",".join(f"{k}={v}" for k, v in sorted(refused.items())))
    drops = int(delta.get("swarmdash_slow_consumer_drops_total", 0))
    if drops:
        parts.append(f"slow_drops={drops}")
    return "; ".join(parts) or "none"


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


@dataclass
class Result:
    scenario: str
    sizes: Sizes
    tally: Tally
    clients: list[dict[str, Any]]
    fault_at: float             # epoch seconds when the fault was injected
    back_from: float            # epoch seconds from which "time back" is counted
    ended_at: float
    counters: dict[str, float]
    stored_twice: int           # numbers stored more than once in the stream
    stored_unconfirmed: int     # numbers stored beyond what the API confirmed
    not_stored: int             # numbers the API confirmed that the stream does not hold
    fault_over: float = 0.0     # epoch seconds when the fault ended (Redis back, link back)
    notes: list[str] = field(default_factory=list)

    # --- per client --------------------------------------------------------------------
    def lost_of(self, c: dict[str, Any]) -> int:
        accepted = self.tally.accepted[c["swarm"]]
        return int(c["missing"]["count"]) + max(0, accepted - int(c["max"]))

    @property
    def lost(self) -> int:
        return sum(self.lost_of(c) for c in self.clients)

    @property
    def dup(self) -> int:
        return sum(int(c["dups"]) for c in self.clients)

    @property
    def out_of_order(self) -> int:
        return sum(int(c["out_of_order"]) + int(c["id_regressions"]) for c in self.clients)

    @property
    def gaps(self) -> int:
        return sum(int(c["gaps"]) for c in self.clients)

    @property
    def fault_ms(self) -> int:
        """The fault's moment as the clients stamp theirs: whole epoch milliseconds
        (``Date.now()`` truncates), so a client dropped in the same millisecond counts."""
        return math.floor(self.fault_at * 1000)

    def affected(self) -> list[dict[str, Any]]:
        """Clients that lost their connection during the scenario (after the fault)."""
        start = self.fault_ms
        return [c for c in self.clients if any(d >= start for d in c["disconnects"])]

    def back_times(self) -> tuple[list[float], list[float]]:
        """For each affected client: seconds from ``back_from`` until its first successful
        resubscribe after its last disconnect, and its own time without a subscription
        (first disconnect to that resubscribe). Infinite when it never came back."""
        start = self.fault_ms
        since_fault, outage = [], []
        for c in self.affected():
            lost = [d for d in c["disconnects"] if d >= start]
            acks = [a for a in c["acks"] if a >= lost[-1]]
            if not acks:
                since_fault.append(math.inf)
                outage.append(math.inf)
                continue
            since_fault.append(max(0.0, acks[0] / 1000 - self.back_from))
            outage.append((acks[0] - lost[0]) / 1000)
        return since_fault, outage

    def current_times(self) -> list[float]:
        """For every client: seconds from the end of the fault until messages reached it
        again (0 when it was not waiting for any at that moment)."""
        over = self.fault_over * 1000
        return [max([(end - over) / 1000 for start, end in c["stalls"] if start <= over < end],
                    default=0.0) for c in self.clients]

    def told_store_unavailable(self) -> list[dict[str, Any]]:
        """Clients told the store was unavailable, and then told it was back."""
        return [c for c in self.clients
                if [available for _, available in c["store"]][-2:] == [False, True]]

    @property
    def stall_p99(self) -> float | None:
        """Longest time a client went without any message (p99 over clients), seconds."""
        return p99([c["max_stall_ms"] / 1000 for c in self.clients])

    def row(self) -> dict[str, str]:
        since_fault, outage = self.back_times()

        def sec(v: float | None) -> str:
            return "-" if v is None else ("never" if v == math.inf else f"{v:.1f}")

        t = self.tally
        other = ",".join(f"{k}={v}" for k, v in sorted(t.refused_other.items())) or "0"
        return {
            "scenario": self.scenario,
            "accepted": str(t.total_accepted),
            "refused-503": str(t.refused_503) + (f" ({t.refused_503 - t.refused_503_node} proxy)"
                                                 if t.refused_503 > t.refused_503_node else ""),
            "refused-other": other,
            "lost": str(self.lost),
            "dup": str(self.dup),
            "out-of-order": str(self.out_of_order),
            "affected": f"{len(self.affected())}/{len(self.clients)}",
            "99% back": sec(p99(since_fault)),
            "p99 outage": sec(p99(outage)),
            "p99 stall": sec(self.stall_p99),
            "p99 current": sec(p99(self.current_times())),
            "error counters": summarize_counters(self.counters),
        }

    def check(self) -> list[str]:
        """Every breach of the delivery contract this run shows (empty: none)."""
        problems = []
        t = self.tally
        if self.lost:
            worst = sorted(self.clients, key=self.lost_of, reverse=True)[:3]
            problems.append(f"{self.lost} events lost; worst clients: " + "; ".join(
                f"#{c['id']} {c['swarm']} lost {self.lost_of(c)} "
                f"(max {c['max']}/{t.accepted[c['swarm']]}, missing {c['missing']['ranges'][:5]},"
                f" nodes {c['nodes']}, connected {c['connected']})" for c in worst))
        if self.dup:
            problems.append(f"{self.dup} events delivered twice")
        if self.out_of_order:
            problems.append(f"{self.out_of_order} events out of order within their channel")
        if self.gaps:
            problems.append(f"{self.gaps} resumes answered gap: true")
        if self.stored_twice:
            problems.append(f"{self.stored_twice} events stored twice in the stream")
        if self.not_stored:
            problems.append(f"{self.not_stored} events answered 202 are not in the stream")
        if self.stored_unconfirmed:
            problems.append(f"{self.stored_unconfirmed} events stored without a 202")
        if t.unexpected:
            problems.append(f"unexpected ingest answers: {t.unexpected[:5]}")
        if t.no_retry_after:
            problems.append(f"{t.no_retry_after} 5xx answers without Retry-After")
        if t.undelivered:
            problems.append(f"{t.undelivered} batches never accepted")
        since_fault, _ = self.back_times()
        never = sum(1 for v in since_fault if v == math.inf)
        if never:
            problems.append(f"{never} affected clients never resubscribed")
        return problems


def stream_check(redis_url: str, after_id: str,
                 swarms: dict[str, int]) -> tuple[int, int, int]:
    """Read the stream after ``after_id``: (numbers stored twice, numbers stored beyond the
    highest one the API confirmed, confirmed numbers missing from the stream) over the given
    swarms (name -> confirmed)."""
    conn = redis.Redis.from_url(redis_url, decode_responses=True)
    seen: dict[str, set[int]] = {s: set() for s in swarms}
    twice = beyond = 0
    position = after_id
    while True:
        entries = conn.xrange("swarmdash:events", min=f"({position}", count=5000)
        if not entries:
            break
        for sid, fields in entries:
            position = sid
            event = json.loads(fields["e"])
            swarm = event["swarm"]
            if swarm not in seen:
                continue
            seq = int(event["data"]["seq"])
            if seq in seen[swarm]:
                twice += 1
            seen[swarm].add(seq)
            if seq > swarms[swarm]:
                beyond += 1
    conn.close()
    missing = sum(len(set(range(1, n + 1)) - seen[s]) for s, n in swarms.items())
    return twice, beyond, missing


def stream_head(redis_url: str) -> str:
    conn = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        last = conn.xrevrange("swarmdash:events", count=1)
        return str(last[0][0]) if last else "0-0"
    finally:
        conn.close()


@dataclass
class Run:
    """What a fault sees while it runs: the cluster, the clients, the publisher."""

    cluster: LocalCluster
    pool: ClientPool
    publisher: IngestFeed
    sizes: Sizes
    back_from: float | None = None  # set by a fault whose "back" is not counted from its start
    fault_over: float | None = None  # set by a fault that ends before it returns


def run_scenario(name: str, cluster: LocalCluster, sizes: Sizes, log_dir: Path,
                 fault: Callable[[Run], None]) -> Result:
    swarms = [f"chaos-{name}-{i}" for i in range(sizes.swarms)]
    head = stream_head(cluster.primary_url)
    before = scrape(cluster)
    pool = ClientPool(cluster.http_url, swarms, sizes.clients, sizes.processes, log_dir)
    publisher: IngestFeed | None = None
    try:
        wait_for(lambda: all(c["connected"] for c in pool.report()), 90, interval=0.5,
                 message=f"{sizes.clients} clients subscribed through the proxy")
        publisher = IngestFeed(cluster.http_url, swarms, sizes.rate, sizes.batch).start()
        # the stream reaches every client before the fault
        wait_for(lambda: all(c["max"] > 0 for c in pool.report()), 60, interval=0.5,
                 message="every client receiving events")
        run = Run(cluster, pool, publisher, sizes)
        fault_at = time.time()
        fault(run)
        fault_over = run.fault_over or run.back_from or time.time()
        # the stream goes on after the recovery and reaches everybody again
        mark = publisher.accepted()
        wait_for(lambda: all(c["connected"] for c in pool.report()), 120, interval=0.5,
                 message="every client subscribed again after the fault")
        wait_for(lambda: all(publisher.accepted().get(s, 0) > mark.get(s, 0) + 2 * sizes.batch
                             for s in swarms), 120, interval=0.2,
                 message="the publisher's events accepted again after the fault")
        publisher.stop()
        accepted = publisher.accepted()
        def complete(c: dict[str, Any]) -> bool:
            return int(c["max"]) >= accepted.get(c["swarm"], 0) and not c["missing"]["count"]

        with contextlib.suppress(AssertionError):  # the accounting says what is missing
            wait_for(lambda: all(complete(c) for c in pool.report()), 60, interval=0.5,
                     message="every accepted event delivered")
        clients = pool.report()
        (log_dir / f"clients-{name}.json").write_text(json.dumps(clients, indent=1))
    finally:
        if publisher is not None:
            publisher.stop()
        pool.close()
    assert publisher is not None
    after = scrape(cluster)
    twice, beyond, missing = stream_check(cluster.primary_url, head, publisher.accepted())
    return Result(name, sizes, publisher.tally, clients, fault_at,
                  run.back_from or fault_at, time.time(), counter_delta(before, after),
                  twice, beyond, missing, fault_over)


COLUMNS = ("scenario", "accepted", "refused-503", "refused-other", "lost", "dup",
           "out-of-order", "affected", "99% back", "p99 outage", "p99 stall", "p99 current",
           "error counters")


def table(results: list[Result]) -> str:
    rows = [r.row() for r in results]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    lines = ["| " + " | ".join(c.ljust(widths[c]) for c in COLUMNS) + " |",
             "|" + "|".join("-" * (widths[c] + 2) for c in COLUMNS) + "|"]
    lines += ["| " + " | ".join(r[c].ljust(widths[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)
