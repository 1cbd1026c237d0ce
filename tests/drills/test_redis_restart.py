"""redis-restart-failover.md, redis-unavailable.md: `restart-redis` while the stream runs;
/health never answers 503 (Redis is away for every node: the nodes stay in the pool), no
dashboard reconnects, AOF keeps the stream, nothing accepted is lost."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest
import requests

from tests.helpers import wait_for
from tests.integration.test_cluster import Feed, assert_exactly_once_in_order

from .conftest import Drill, Viewer, ensure_all, wait_healthy

pytestmark = pytest.mark.integration
SOURCES = [f"127.0.6.{i}" for i in range(1, 7)]


def xinfo(drill: Drill) -> dict[str, str]:
    lines = drill.sh("redis-cli -p 6390 XINFO STREAM swarmdash:events").stdout.splitlines()
    return dict(zip(lines[::2], lines[1::2], strict=False))


class HealthWatch:
    """Polls every node's /health, one thread per node; records the status codes seen."""

    def __init__(self, urls: list[str]):
        self.urls = urls
        self.seen: dict[str, Counter[int]] = {u: Counter() for u in urls}
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.poll, args=(u,), daemon=True)
                        for u in urls]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def poll(self, url: str) -> None:
        session = requests.Session()
        while not self.stop_flag.wait(0.002):
            try:
                code = session.get(f"{url}/health", timeout=2).status_code
            except requests.RequestException:
                code = 0
            self.seen[url][code] += 1


def test_restart_redis_nodes_recover_and_nothing_is_lost(
        drill: Drill, viewers: list[Viewer]) -> None:
    wait_healthy(drill)
    swarm = "redis-restart"
    for src in SOURCES:
        viewer = Viewer(drill.url, src, swarm)
        viewers.append(viewer)
        assert viewer.connect()
    errors_before = drill.metric_sum('swarmdash_redis_errors_total{component="relay"}')
    feed = Feed([drill.url], swarm)
    feed.start()
    watch = HealthWatch(list(drill.node_urls().values()))
    try:
        wait_for(lambda: len(feed.accepted) >= 40, 15, message="events before the restart")
        before = xinfo(drill)
        watch.start()
        started = time.monotonic()
        drill.cli("restart-redis")
        took = time.monotonic() - started
        wait_for(lambda: all(requests.get(f"{u}/health", timeout=2).status_code == 200
                             for u in watch.urls), 20, message="/health 200 on every node")
        healthy_after = time.monotonic() - started
        watch.stop_flag.set()
        wait_for(lambda: ensure_all(viewers), 30, interval=0.05, message="every viewer on")
        target = len(feed.accepted) + 40
        wait_for(lambda: len(feed.accepted) >= target, 20, message="ingest accepted again")
    finally:
        watch.stop_flag.set()
        feed.stop()
    # An outage every node sees keeps them all in the pool: no 503, no reconnect.
    assert not any(seen[503] for seen in watch.seen.values()), watch.seen
    assert sum(len(v.sessions) - 1 for v in viewers) == 0, "a dashboard reconnected"
    after = xinfo(drill)
    assert after["first-entry"].split("\n")[0] == before["first-entry"].split("\n")[0]
    assert int(after["length"]) >= int(before["length"]) + 40, (before, after)
    assert drill.metric_sum('swarmdash_redis_errors_total{component="relay"}') > errors_before
    for v in viewers:
        wait_for(v.has_all(feed.accepted), 20,
                 message=f"every accepted event on {v.source}")
        assert_exactly_once_in_order(v.merged(), feed.accepted, swarm)
    assert set(feed.refused) <= {503}, feed.refused
    wait_healthy(drill)
    own = drill.sh("curl -s http://127.0.1.1:8050/health/redis").stdout
    assert json.loads(own)["redis"] == "ok", own
    print(f"\nrestart-redis: command {took:.2f} s, /health codes per node "
          f"{[dict(seen) for seen in watch.seen.values()]}, every node 200 after "
          f"{healthy_after:.2f} s;"
          f" ingest refused {dict(feed.refused)}, {sum(len(v.sessions) - 1 for v in viewers)} "
          f"client reconnects; stream {before['length']} -> {after['length']} entries, "
          f"{len(feed.accepted)} events delivered exactly once")
