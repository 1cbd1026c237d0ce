"""The page through HAProxy (the local cluster): its node is killed, it resumes on another one."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Page

from swarmdash.cluster.local import LocalCluster
from tests.helpers import AGENT_HEADERS, AUTH_ENV
from tests.local_cluster import start_cluster

from .conftest import NODE_SETTINGS, log_events, publish, shown_seqs, wait_for_seqs, wait_for_state

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # the default threshold: this is about reconnecting, not about the polling fallback
    env = {**NODE_SETTINGS, "WEBSOCKET_FALLBACK_THRESHOLD": "5", **AUTH_ENV,
           "AUTH_DISABLED": "false"}  # the page's cookie and publish()'s key are the tests'
    running = start_cluster(tmp_path_factory.mktemp("browser-lc"), 2, node_env=env)
    try:
        yield running
    finally:
        running.down()


def test_serving_node_killed_page_resumes_on_another_with_every_event_once(
        cluster: LocalCluster, page: Page) -> None:
    swarm = "bt-failover"
    page.goto(f"{cluster.http_url}/#swarm={swarm}")  # through HAProxy: polling, then upgrade
    wait_for_state(page, "websocket")
    page.wait_for_function(
        "window.__swarmdash.status().subscriptions.every((s) => s.subscribed)", timeout=15000)
    serving = page.evaluate("window.__swarmdash.status().node")
    other = next(n for n in cluster.running_nodes() if n.name != serving)
    other_url = cluster.node_url(other)

    publish(other_url, log_events(swarm, range(0, 20)))
    wait_for_seqs(page, swarm, 20)

    cluster.kill_node(serving)  # kill -9: no goodbye to the browser
    publish(other_url, log_events(swarm, range(20, 50)))  # while the page is away
    page.wait_for_function(
        """(dead) => { const s = window.__swarmdash.status();
                       return s.state === "websocket" && s.node !== dead
                              && s.subscriptions.every((x) => x.subscribed); }""",
        arg=serving, timeout=30000)
    publish(other_url, log_events(swarm, range(50, 60)))
    wait_for_seqs(page, swarm, 60)

    seqs = shown_seqs(page, swarm)
    assert [n for n, c in Counter(seqs).items() if c > 1] == [], "shown twice"
    assert seqs == list(range(60)), "missing or out of order"
    replayed = page.evaluate("""(swarm) => window.__swarmdash.shown
        .filter((e) => e.swarm === swarm && e.replay).map((e) => e.data.seq)""", swarm)
    assert replayed and set(replayed) <= set(range(20, 50)), "resumed from the cursor"
    status = page.evaluate("window.__swarmdash.status()")
    assert status["node"] == other.name
    # the node resent exactly what was missed: nothing had to be dropped as a duplicate
    assert page.evaluate("window.__swarmdash.stats().duplicates") == 0


def test_redis_frozen_page_shows_the_store_unavailable_and_resumes_by_itself(
        cluster: LocalCluster, page: Page) -> None:
    """Redis away for every node: the page keeps its connection, says the store is
    unavailable, and shows the stream again, every event once, when Redis is back."""
    swarm = "bt-store"
    page.goto(f"{cluster.http_url}/#swarm={swarm}")
    wait_for_state(page, "websocket")
    page.wait_for_function(
        "window.__swarmdash.status().subscriptions.every((s) => s.subscribed)", timeout=15000)
    url = cluster.http_url  # through HAProxy, which keeps every node during the outage
    publish(url, log_events(swarm, range(0, 10)))
    wait_for_seqs(page, swarm, 10)
    reconnects = page.evaluate("window.__swarmdash.stats().reconnects")
    pid = cluster.state.pids["redis"]
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for_state(page, "store-unavailable")
        text = page.inner_text("#connection-text")
        assert "store unavailable" in text, text
        refused = requests.post(f"{url}/api/v1/events", json=log_events(swarm, range(10, 11)),
                                headers=AGENT_HEADERS, timeout=10)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for_state(page, "websocket")
    publish(url, log_events(swarm, range(10, 20)))
    wait_for_seqs(page, swarm, 20)
    assert shown_seqs(page, swarm) == list(range(20)), "missing, repeated or out of order"
    assert page.evaluate("window.__swarmdash.stats().reconnects") == reconnects, \
        "the page reconnected during the outage"
