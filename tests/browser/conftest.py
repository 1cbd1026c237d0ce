"""Real-browser fixtures: Debian's chromium driven by Playwright, real nodes, real redis-server.

No browser is downloaded: Playwright launches ``/usr/bin/chromium`` (``CHROMIUM`` overrides
it; tests/run.sh installs the Debian package). Two nodes share one redis-server, so the
page can watch one node while events are published to the other. The nodes fall back to
polling after two failed reconnects (``WEBSOCKET_FALLBACK_THRESHOLD=2``) to keep the
fallback tests short.

Auth is on: every page starts signed in (the viewer-token cookie that ``/login`` sets, for
an all-swarms token) and events are published with the test API key; test_auth_page.py
signs in through ``/login`` itself.

Pages get ``window.__swarmdashRecord = true`` before their scripts run: the dashboard then
records every event it shows (after de-duplication) in ``window.__swarmdash.shown``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from swarmdash.auth.config import COOKIE
from tests.helpers import AGENT_HEADERS, Node, RedisServer, node_group, viewer_token

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
#: Settings of the browser-test nodes (small, so that fallback and resume are quick).
NODE_SETTINGS = {"WEBSOCKET_FALLBACK_THRESHOLD": "2", "WEBSOCKET_MAX_RECONNECT_ATTEMPTS": "0",
                 "COALESCE_AGENT_UPDATES": "false", "HEARTBEAT_INTERVAL": "0.5",
                 "HEARTBEAT_TTL": "3"}


@dataclass
class Swarm:
    """Two nodes on one redis-server: the page watches ``nodes[0]``, events go to ``nodes[1]``."""

    redis: RedisServer
    nodes: list[Node]

    @property
    def page_url(self) -> str:
        return self.nodes[0].url

    @property
    def publish_url(self) -> str:
        return self.nodes[1].url


def publish(url: str, events: list[dict[str, Any]]) -> list[str]:
    """POST events to a node; return their ids."""
    response = requests.post(f"{url}/api/v1/events", json=events, timeout=10,
                             headers={"Idempotency-Key": uuid.uuid4().hex, **AGENT_HEADERS})
    assert response.status_code == 202, response.text
    ids: list[str] = response.json()["ids"]
    return ids


def log_events(swarm: str, seqs: range, agent: str = "agent-1") -> list[dict[str, Any]]:
    return [{"type": "log", "swarm": swarm, "agent_id": agent,
             "data": {"level": "info", "message": f"line {n}", "seq": n}} for n in seqs]


def shown(page: Page, swarm: str) -> list[dict[str, Any]]:
    """Events of ``swarm`` the page has shown, in order (the dashboard's test record)."""
    found: list[dict[str, Any]] = page.evaluate(
        "(swarm) => window.__swarmdash.shown.filter((e) => e.swarm === swarm)", swarm)
    return found


def shown_seqs(page: Page, swarm: str) -> list[int]:
    return [e["data"]["seq"] for e in shown(page, swarm) if e["type"] == "log"]


def wait_for_seqs(page: Page, swarm: str, count: int, timeout_ms: float = 15000) -> None:
    page.wait_for_function(
        """([swarm, count]) => window.__swarmdash.shown.filter(
             (e) => e.swarm === swarm && e.type === "log").length >= count""",
        arg=[swarm, count], timeout=timeout_ms)


def wait_for_state(page: Page, state: str, timeout_ms: float = 20000) -> None:
    page.wait_for_selector(f'#connection[data-state="{state}"]', timeout=timeout_ms)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    assert Path(CHROMIUM).exists(), \
        f"{CHROMIUM} is missing: install Debian's chromium (tests/run.sh does)"
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                  headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def swarm_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    with node_group(tmp_path_factory.mktemp("browser")) as group:
        for i in (1, 2):
            group.start(f"bnode{i}", "gevent", auth=True, **NODE_SETTINGS)
        yield Swarm(group.redis, group.nodes)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context and page; JavaScript errors on the page fail the test."""
    # Some probes of these tests evaluate strings, which the page's CSP (no eval) forbids;
    # test_auth_page.py runs the page under its CSP.
    context = browser.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=True)
    context.add_init_script("window.__swarmdashRecord = true;")
    context.add_cookies([{"name": COOKIE, "value": viewer_token(name="browser-test"),
                          "domain": "127.0.0.1", "path": "/", "httpOnly": True,
                          "sameSite": "Strict"}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
