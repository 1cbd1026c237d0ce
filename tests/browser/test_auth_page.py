"""Sign-in in real Chromium: the page without a token says so (no reconnect loop); the
/login form posts the token (from the link's fragment, never a URL the node sees), sets the
cookie and the page goes live under its Content-Security-Policy; a token for one swarm
shows that swarm only."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.helpers import viewer_token

from .conftest import Swarm, log_events, publish, wait_for_seqs, wait_for_state

pytestmark = pytest.mark.integration


@pytest.fixture
def bare_page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A page with no cookie; collects JavaScript errors and CSP violations."""
    context = browser.new_context()
    context.add_init_script("window.__swarmdashRecord = true;")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text)
            if "Content Security Policy" in m.text else None)
    yield page, problems
    context.close()


def test_without_a_token_the_page_says_not_signed_in_and_stops(
        swarm_nodes: Swarm, bare_page: tuple[Page, list[str]]) -> None:
    page, problems = bare_page
    requests_made: list[str] = []
    page.on("request", lambda r: requests_made.append(r.url) if "/socket.io/" in r.url else None)
    page.goto(swarm_nodes.page_url + "/")
    wait_for_state(page, "signed-out")
    expect(page.locator("#connection-text")).to_contain_text("not signed in")
    handshakes = len(requests_made)
    page.wait_for_timeout(3000)  # what a reconnect loop would do in this time: nothing
    assert len(requests_made) == handshakes, "the page kept trying to connect"
    assert page.evaluate("window.__swarmdash.status().mode") == "signed-out"
    assert problems == []


def test_login_then_live_under_the_csp_with_one_swarm(
        swarm_nodes: Swarm, bare_page: tuple[Page, list[str]]) -> None:
    page, problems = bare_page
    swarm = "bt-signed-in"
    token = viewer_token([swarm], name="alice")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url))
    # The link `swarmdash token --url` prints: the token after "#", never sent to the node.
    page.goto(f"{swarm_nodes.page_url}/login#token={token}")
    assert "token=" not in page.url, "the token does not stay in the address bar"
    assert page.input_value("#token") == token
    assert page.url.rstrip("/").endswith("/login"), "the page does not sign in by itself"
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    response = navigation.value
    # the dashboard, whose script may already have put the swarm shown in the fragment
    landed, _, fragment = page.url.partition("#")
    assert landed.rstrip("/") == swarm_nodes.page_url and token not in fragment
    assert response is not None
    assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")
    assert not any(token in url for url in sent), "the token went into a URL"
    wait_for_state(page, "websocket")
    page.wait_for_function(
        "window.__swarmdash.status().subscriptions.length > 0 && "
        "window.__swarmdash.status().subscriptions.every((s) => s.subscribed)", timeout=15000)
    # A token for one swarm: that swarm is shown, "all swarms" is not offered.
    assert page.evaluate("window.__swarmdash.state.view.swarm") == swarm
    options = page.locator("#swarm-select option").all_inner_texts()
    assert "all swarms" not in options and swarm in options
    publish(swarm_nodes.publish_url, log_events(swarm, range(0, 10)))
    wait_for_seqs(page, swarm, 10)
    assert page.evaluate("window.__swarmdash.status().viewer.name") == "alice"
    cookie = next(c for c in page.context.cookies() if c["name"] == "swarmdash_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == "", "the token is not readable by scripts"
    assert problems == []


def test_an_old_query_link_fills_the_form_and_signs_in_with_a_click(
        swarm_nodes: Swarm, bare_page: tuple[Page, list[str]]) -> None:
    page, problems = bare_page
    token = viewer_token(["bt-old-link"], name="bob")
    page.goto(f"{swarm_nodes.page_url}/login?token={token}")
    assert "token=" not in page.url and page.input_value("#token") == token
    assert not any(c["name"] == "swarmdash_token" for c in page.context.cookies())
    with page.expect_navigation():
        page.click("button[type=submit]")
    wait_for_state(page, "websocket")
    assert page.evaluate("window.__swarmdash.status().viewer.name") == "bob"
    assert problems == []


def test_a_live_page_asks_for_a_new_sign_in_when_its_token_expires(
        swarm_nodes: Swarm, bare_page: tuple[Page, list[str]]) -> None:
    page, problems = bare_page
    swarm = "bt-expiring"
    sign_in(page, swarm_nodes.page_url, viewer_token([swarm], ttl=4))
    wait_for_state(page, "websocket")
    wait_for_state(page, "signed-out")
    expect(page.locator("#connection-text")).to_contain_text("sign-in expired")
    expect(page.locator("#connection")).to_have_attribute("title", re.compile("expired"))
    assert page.evaluate("window.__swarmdash.status().mode") == "signed-out"
    assert problems == []


def sign_in(page: Page, base: str, token: str) -> None:
    """Sign in as a person does: the link `swarmdash token` prints, then the button."""
    page.goto(f"{base}/login#token={token}")
    with page.expect_navigation():
        page.click("button[type=submit]")
