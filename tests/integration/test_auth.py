"""The auth matrix against a real node (gunicorn, gevent) on a real redis-server: agents'
API keys, viewers' tokens over HTTP and Socket.IO (python-socketio and the official JS
client), the origin policy, the production refusals and the page's security headers."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio

from swarmdash.auth import issue_token
from swarmdash.auth.apikeys import generate_key
from swarmdash.cluster.local import node_command
from tests.helpers import (
    AGENT_HEADERS,
    AGENT_KEY_ENTRY,
    BIN,
    ROOT,
    TEST_SECRET_KEY,
    DashClient,
    Node,
    NodeGroup,
    Process,
    RedisServer,
    free_port,
    node_env,
    raw_get,
    start_node,
    viewer_token,
    wait_for,
)

pytestmark = pytest.mark.integration
OLD_SECRET = "previous-secret-" + uuid.uuid4().hex
ALLOWED_ORIGIN = "https://ops.example.com"
FOREIGN_ORIGIN = "https://evil.example.net"


def entry(key_id: str, key: str, scope: str) -> str:
    return f"{key_id}:{hashlib.sha256(key.encode()).hexdigest()}:{scope}"


@dataclass
class Keys:
    alpha_only: str = generate_key()
    old: str = generate_key()
    new: str = generate_key()

    def entries(self) -> str:
        return ",".join([entry("alpha-fleet", self.alpha_only, "alpha"),
                         entry("fleet-old", self.old, "*"), entry("fleet-new", self.new, "*")])


KEYS = Keys()


@dataclass
class AuthNode:
    node: Node
    redis: RedisServer

    @property
    def url(self) -> str:
        return self.node.url


@pytest.fixture(scope="module")
def secured(node_factory: NodeGroup) -> AuthNode:
    node = node_factory.start("auth1", auth=True, API_KEYS=f"{AGENT_KEY_ENTRY},{KEYS.entries()}",
                              SECRET_KEY_PREVIOUS=OLD_SECRET, CORS_ALLOWED_ORIGINS=ALLOWED_ORIGIN,
                              COALESCE_AGENT_UPDATES="false")
    return AuthNode(node, node_factory.redis)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def log_event(swarm: str, message: str) -> dict[str, Any]:
    return {"type": "log", "swarm": swarm, "agent_id": "a1",
            "data": {"level": "info", "message": message}}


def post(url: str, events: list[dict[str, Any]], headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{url}/api/v1/events", json=events, headers=headers, timeout=10)


def messages(url: str, swarm: str) -> list[str]:
    r = requests.get(f"{url}/api/v1/events", params={"swarm": swarm, "limit": 1000},
                     headers=bearer(viewer_token()), timeout=10)
    assert r.status_code == 200, r.text
    return [e["data"]["message"] for e in r.json()["events"]]


# --- agents -----------------------------------------------------------------------------------

def test_agent_key_right_wrong_missing(secured: AuthNode) -> None:
    ok = post(secured.url, [log_event("alpha", "with the key")], AGENT_HEADERS)
    assert ok.status_code == 202, ok.text
    for headers, reason in (({}, "missing"), (bearer(generate_key()), "invalid"),
                            ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing"),
                            (bearer(viewer_token()), "invalid")):  # a viewer token is no key
        r = post(secured.url, [log_event("alpha", f"refused {reason}")], headers)
        assert r.status_code == 401, r.text
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.json()["reason"] == reason and "API key" in r.json()["error"]
    assert messages(secured.url, "alpha") == ["with the key"]


def test_agent_key_scoped_to_other_swarm_is_refused_and_nothing_of_the_batch_is_stored(
        secured: AuthNode) -> None:
    ok = post(secured.url, [log_event("alpha", "scoped ok")], bearer(KEYS.alpha_only))
    assert ok.status_code == 202, ok.text
    r = post(secured.url, [log_event("alpha", "half"), log_event("gamma", "other swarm")],
             bearer(KEYS.alpha_only))
    assert r.status_code == 403, r.text
    assert r.json()["swarms"] == ["gamma"] and "gamma" in r.json()["error"]
    assert "half" not in messages(secured.url, "alpha")
    assert messages(secured.url, "gamma") == []


def test_an_idempotency_key_of_one_api_key_does_not_swallow_anothers_batch(
        secured: AuthNode) -> None:
    """The audit: key B's batch under key A's Idempotency-Key got A's ids and was dropped."""
    header = {"Idempotency-Key": f"batch-{uuid.uuid4().hex[:8]}"}
    a = post(secured.url, [log_event("idem-a", "a's batch")], {**bearer(KEYS.old), **header})
    b = post(secured.url, [log_event("idem-b", "b's batch")], {**bearer(KEYS.new), **header})
    assert a.status_code == b.status_code == 202, (a.text, b.text)
    assert "duplicate" not in b.json() and b.json()["ids"] != a.json()["ids"]
    assert messages(secured.url, "idem-b") == ["b's batch"]
    # B's retry is B's duplicate; A reusing its key for another batch is refused, loudly
    again = post(secured.url, [log_event("idem-b", "b's batch")], {**bearer(KEYS.new), **header})
    assert again.json().get("duplicate") is True and again.json()["ids"] == b.json()["ids"]
    reused = post(secured.url, [log_event("idem-a", "another")], {**bearer(KEYS.old), **header})
    assert reused.status_code == 409 and header["Idempotency-Key"] in reused.json()["error"]
    assert messages(secured.url, "idem-a") == ["a's batch"]


def test_rotated_keys_old_and_new_both_work(secured: AuthNode) -> None:
    for key, text in ((KEYS.old, "old key"), (KEYS.new, "new key")):
        r = post(secured.url, [log_event("rotation", text)], bearer(key))
        assert r.status_code == 202, r.text
    assert messages(secured.url, "rotation") == ["old key", "new key"]


def test_publish_command_and_publisher_send_the_key(secured: AuthNode) -> None:
    from swarmdash import Publisher
    from swarmdash.auth import AuthError

    with Publisher(url=secured.url, api_key=KEYS.alpha_only) as pub:
        assert pub.log_line("alpha", "a1", "info", "from Publisher").accepted == 1
        with pytest.raises(AuthError) as exc:
            pub.log_line("beta", "a1", "info", "not my swarm")
        assert exc.value.status == 403
    cli = [sys.executable, "-m", "swarmdash.cli", "publish", "--url", secured.url, "--type",
           "log", "--swarm", "alpha", "--agent", "a1", "--data",
           '{"level": "info", "message": "from the shell"}']
    env = {"PATH": "/usr/bin:/bin", "SWARMDASH_ENV_FILE": "/nonexistent"}
    refused = subprocess.run(cli, capture_output=True, text=True, timeout=30, env=env)
    assert refused.returncode == 4 and '"status": 401' in refused.stderr, refused.stderr
    done = subprocess.run(cli, capture_output=True, text=True, timeout=30,
                          env={**env, "PUBLISH_API_KEY": KEYS.new})
    assert done.returncode == 0, done.stderr
    assert messages(secured.url, "alpha")[-2:] == ["from Publisher", "from the shell"]


# --- viewers over HTTP ------------------------------------------------------------------------

def test_viewer_token_valid_expired_tampered_previous_unknown(secured: AuthNode) -> None:
    url = f"{secured.url}/api/v1/snapshot"
    valid = viewer_token()
    expired = issue_token(TEST_SECRET_KEY, swarms=None, ttl=60, now=time.time() - 120)
    tampered = valid[:-3] + ("abc" if not valid.endswith("abc") else "xyz")
    previous = issue_token(OLD_SECRET, swarms=None, ttl=60)
    unknown = issue_token("unknown-secret-" + uuid.uuid4().hex, swarms=None, ttl=60)
    assert requests.get(url, headers=bearer(valid), timeout=5).status_code == 200
    assert requests.get(url, headers=bearer(previous), timeout=5).status_code == 200, \
        "signed with SECRET_KEY_PREVIOUS: still accepted"
    assert requests.get(url, cookies={"swarmdash_token": valid}, timeout=5).status_code == 200
    for token, reason in ((None, "missing"), (expired, "expired"), (tampered, "invalid"),
                          (unknown, "invalid")):
        r = requests.get(url, headers=bearer(token) if token else {}, timeout=5)
        assert r.status_code == 401, (reason, r.text)
        assert r.json()["reason"] == reason and r.json()["error"]
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_swarm_outside_the_token_is_forbidden_on_events_and_snapshot(secured: AuthNode) -> None:
    token = bearer(viewer_token(["alpha"]))
    for path in ("/api/v1/events", "/api/v1/snapshot"):
        ok = requests.get(f"{secured.url}{path}?swarm=alpha", headers=token, timeout=5)
        assert ok.status_code == 200, ok.text
        other = requests.get(f"{secured.url}{path}?swarm=beta", headers=token, timeout=5)
        assert other.status_code == 403 and other.json()["swarm"] == "beta"
        every = requests.get(f"{secured.url}{path}", headers=token, timeout=5)
        assert every.status_code == 403 and "all-swarms" in every.json()["error"]


def test_public_and_viewer_only_routes(secured: AuthNode) -> None:
    for path in ("/health", "/metrics", "/api/v1/config", "/api/v1/cluster/targets", "/"):
        assert requests.get(f"{secured.url}{path}", timeout=5).status_code == 200, path
    assert requests.get(f"{secured.url}/health", timeout=5).json()["auth"] == "enabled"
    cluster = f"{secured.url}/api/v1/cluster"
    assert requests.get(cluster, timeout=5).status_code == 401
    assert requests.get(cluster, headers=bearer(viewer_token(["alpha"])),
                        timeout=5).status_code == 200


def test_login_sets_an_httponly_strict_cookie_secure_behind_tls(secured: AuthNode) -> None:
    token = viewer_token(["alpha"], ttl=600)
    r = requests.post(f"{secured.url}/login", data={"token": token}, allow_redirects=False,
                      timeout=5)
    assert r.status_code == 303 and r.headers["Location"] == "/"
    cookie = r.headers["Set-Cookie"]
    assert f"swarmdash_token={token}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    behind_tls = requests.post(f"{secured.url}/login", data={"token": token},
                               headers={"X-Forwarded-Proto": "https"}, allow_redirects=False,
                               timeout=5)
    assert "Secure" in behind_tls.headers["Set-Cookie"]
    bad = requests.post(f"{secured.url}/login", data={"token": token + "x"},
                        allow_redirects=False, timeout=5)
    assert bad.status_code == 401 and "Set-Cookie" not in bad.headers


#: What a browser sends with a navigation another site started (a link, a redirect, a form).
FROM_ANOTHER_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}


def test_a_link_from_another_site_can_neither_sign_in_nor_out(secured: AuthNode) -> None:
    """Login CSRF: GET /login?token=<attacker's token> from any site's link gave the victim's
    browser the attacker's session; GET /logout from a link signed anyone out."""
    attackers = viewer_token(["alpha"], ttl=600, name="attacker")
    link = requests.get(f"{secured.url}/login", params={"token": attackers},
                        headers=FROM_ANOTHER_SITE, allow_redirects=False, timeout=5)
    assert "Set-Cookie" not in link.headers, "a link signed the browser in"
    assert link.status_code == 200 and attackers not in link.text  # the form, not the token
    assert 'method="post"' in link.text and link.headers["Cache-Control"] == "no-store"
    out = requests.get(f"{secured.url}/logout", headers=FROM_ANOTHER_SITE,
                       allow_redirects=False, timeout=5)
    assert "Set-Cookie" not in out.headers, "a link signed the browser out"
    assert out.status_code == 405
    # A form on another site posting: refused by its Origin, or by Sec-Fetch-Site alone.
    for headers in ({"Origin": FOREIGN_ORIGIN}, FROM_ANOTHER_SITE,
                    {"Sec-Fetch-Site": "same-site"}):
        for path, data in (("/login", {"token": attackers}), ("/logout", {})):
            r = requests.post(f"{secured.url}{path}", data=data, headers=headers,
                              allow_redirects=False, timeout=5)
            assert r.status_code == 403 and "Set-Cookie" not in r.headers, (path, headers)
            assert r.json()["error"]
    # The page's own form (same origin) signs in and out.
    own = {"Origin": secured.url, "Sec-Fetch-Site": "same-origin"}
    signed_in = requests.post(f"{secured.url}/login", data={"token": attackers}, headers=own,
                              allow_redirects=False, timeout=5)
    assert signed_in.status_code == 303 and "swarmdash_token=" in signed_in.headers["Set-Cookie"]
    signed_out = requests.post(f"{secured.url}/logout", headers=own, allow_redirects=False,
                               timeout=5)
    assert signed_out.status_code == 303
    assert "swarmdash_token=;" in signed_out.headers["Set-Cookie"]


def test_token_command_prints_a_link_that_keeps_the_token_out_of_requests(
        secured: AuthNode) -> None:
    out = subprocess.run([str(BIN / "swarmdash"), "token", "--swarm", "alpha", "--url",
                          secured.url], capture_output=True, text=True, timeout=30,
                         env={**node_env(secured.redis.url, "cli", 1), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    link = next(line for line in out.stderr.splitlines() if "sign in:" in line).split()[-1]
    assert link == f"{secured.url}/login#token={token}"
    page, _, fragment = link.partition("#")  # a browser never sends the fragment
    assert requests.get(page, timeout=5).status_code == 200
    assert fragment == f"token={token}"


def test_page_security_headers(secured: AuthNode) -> None:
    page = requests.get(f"{secured.url}/", timeout=5)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in page.text, "no inline script (the CSP would block it)"


# --- viewers over Socket.IO -------------------------------------------------------------------

def test_connect_without_or_with_a_bad_token_is_refused(secured: AuthNode) -> None:
    expired = issue_token(TEST_SECRET_KEY, swarms=None, ttl=60, now=time.time() - 120)
    for token, reason in ((None, "missing"), (expired, "expired"), ("forged.token", "invalid")):
        client = DashClient(secured.url, token=token)
        refusals: list[Any] = []
        client.sio.on("connect_error", refusals.append)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect()
        assert not client.sio.connected
        assert refusals and refusals[0]["message"].startswith("unauthorized: "), refusals
        assert refusals[0]["data"]["error"] == "unauthorized"
        assert refusals[0]["data"]["reason"] == reason and refusals[0]["data"]["detail"]


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_connect_with_the_cookie_or_a_bearer_header_on_either_transport(
        secured: AuthNode, transport: str) -> None:
    for headers in ({"Cookie": f"swarmdash_token={viewer_token(['alpha'])}"},
                    bearer(viewer_token(["alpha"]))):
        sio = socketio.Client(reconnection=False)
        client = DashClient(secured.url, transports=[transport], sio=sio, token=None)
        sio.connect(secured.url, transports=[transport], headers=headers, wait_timeout=10)
        try:
            assert client.subscribe(swarm="alpha", channels=["log"])["ok"]
            info = wait_for(lambda c=client: c.events("connection_established"), 5)
            assert info[0][1]["viewer"]["swarms"] == ["alpha"]
        finally:
            client.close()


def test_subscribe_outside_the_token_is_forbidden(secured: AuthNode) -> None:
    client = DashClient(secured.url, token=viewer_token(["alpha"])).connect()
    try:
        assert client.subscribe(swarm="alpha", channels=["log"])["ok"]
        beta = client.subscribe(swarm="beta", channels=["log"])
        assert beta["ok"] is False and beta["error"] == "forbidden" and beta["swarm"] == "beta"
        every = client.subscribe(swarm="*", channels=["log"])
        assert every["ok"] is False and every["error"] == "forbidden"
    finally:
        client.close()
    everyone = DashClient(secured.url).connect()  # an all-swarms token
    try:
        assert everyone.subscribe(swarm="*", channels=["log"])["ok"]
    finally:
        everyone.close()


def test_official_js_client_sees_connect_error_without_a_token(secured: AuthNode) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for the official client (tests/run.sh installs it)"
    client = ROOT / "tests" / "js" / "client.mjs"
    done = subprocess.run([node, str(client), secured.url, "alpha", "1"], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2, done.stdout + done.stderr
    refused = [json.loads(line) for line in done.stdout.splitlines()
               if line.startswith('{"connect_error"')]
    assert refused and refused[0]["connect_error"]["data"]["error"] == "unauthorized"
    assert refused[0]["active"] is False, "a refused client does not retry by itself"


# --- origins ----------------------------------------------------------------------------------

def test_foreign_origin_refused_on_http_allowed_and_same_origin_pass(secured: AuthNode) -> None:
    url = f"{secured.url}/api/v1/snapshot?swarm=alpha"
    token = bearer(viewer_token())
    foreign = requests.get(url, headers={**token, "Origin": FOREIGN_ORIGIN}, timeout=5)
    assert foreign.status_code == 403 and "not allowed" in foreign.json()["error"]
    assert "Access-Control-Allow-Origin" not in foreign.headers
    posted = post(secured.url, [log_event("alpha", "cross-site")],
                  {**AGENT_HEADERS, "Origin": FOREIGN_ORIGIN})
    assert posted.status_code == 403
    allowed = requests.get(url, headers={**token, "Origin": ALLOWED_ORIGIN}, timeout=5)
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    same = requests.get(url, headers={**token, "Origin": secured.url}, timeout=5)
    assert same.status_code == 200
    preflight = requests.options(f"{secured.url}/api/v1/events", timeout=5, headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def test_foreign_origin_refused_on_the_socketio_handshake(secured: AuthNode) -> None:
    base = f"{secured.url}/socket.io/?EIO=4&transport=polling"
    foreign = requests.get(base, headers={"Origin": FOREIGN_ORIGIN}, timeout=5)
    assert foreign.status_code == 400 and "Not an accepted origin" in foreign.text
    for origin in (ALLOWED_ORIGIN, secured.url):
        ok = requests.get(base, headers={"Origin": origin}, timeout=5)
        assert ok.status_code == 200 and ok.text.startswith("0{"), (origin, ok.text)
    sio = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(secured.url, transports=["websocket"], wait_timeout=5,
                    headers={"Origin": FOREIGN_ORIGIN}, auth={"token": viewer_token()})


# --- production refusals and the demo switch --------------------------------------------------

@pytest.mark.parametrize("override, says", [
    ({"SECRET_KEY": "dev-insecure-change-me"}, "SECRET_KEY is missing or a placeholder"),
    ({"SECRET_KEY": "too-short"}, "fewer than 32"),
    ({"CORS_ALLOWED_ORIGINS": "*"}, "CORS_ALLOWED_ORIGINS=*"),
    # the audit: a public former key made tokens anyone could forge; 'a' * 32 passed
    ({"SECRET_KEY_PREVIOUS": "dev-insecure-change-me"},
     "SECRET_KEY_PREVIOUS (key 1) is missing or a placeholder"),
    ({"SECRET_KEY": "a" * 32}, "bits of entropy"),
])
def test_production_node_refuses_to_start(tmp_path: Path, override: dict[str, str],
                                          says: str) -> None:
    env = {**node_env("redis://127.0.0.1:1/0", "refused", free_port(), auth=True), **override}
    process = Process("refused", node_command(), tmp_path, env).start()
    try:
        wait_for(lambda: not process.alive, 60, message="gunicorn to give up")
    finally:
        process.kill()
    assert process.returncode not in (None, 0)
    assert says in process.log_path.read_text(), process.tail()
    serve = subprocess.run([sys.executable, "-m", "swarmdash.cli", "serve"],
                           env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True,
                           text=True, timeout=60)
    assert serve.returncode == 2, serve.stderr
    assert "configuration error:" in serve.stderr and says in serve.stderr, serve.stderr


def test_auth_disabled_node_says_so(secured: AuthNode, tmp_path: Path) -> None:
    env = node_env(secured.redis.url, "open1", free_port(),
                   MESSAGE_QUEUE_CHANNEL=f"swarmdash-auth-{secured.redis.port}",
                   LOG_LEVEL="warning")
    node = start_node("open1", "gunicorn", env, tmp_path)
    try:
        health = node.health().json()
        assert health["auth"] == "disabled" and "AUTH_DISABLED" in health["warning"]
        assert "AUTH_DISABLED=true" in node.process.log_path.read_text()
        client = DashClient(node.url, token=None).connect()
        try:
            assert client.subscribe(swarm="*", channels=["log"])["ok"]
        finally:
            client.close()
        assert post(node.url, [log_event("open", "no key")], {}).status_code == 202
    finally:
        node.process.stop()


def test_dns_rebinding_cannot_reach_an_open_demo_node(secured: AuthNode, tmp_path: Path) -> None:
    """A page on http://rebind.example:<port>, its name made to resolve to 127.0.0.1, is the
    node's "own" origin by Host and Origin: it could read and publish on an AUTH_DISABLED
    demo. The node answers only names that cannot be rebound, the API and Socket.IO alike."""
    port = free_port()
    env = node_env(secured.redis.url, "open2", port,
                   MESSAGE_QUEUE_CHANNEL=f"swarmdash-auth-{secured.redis.port}")
    node = start_node("open2", "gunicorn", env, tmp_path)
    rebound = {"Host": f"rebind.example:{port}", "Origin": f"http://rebind.example:{port}"}
    try:
        for path in ("/api/v1/snapshot", "/", "/socket.io/?EIO=4&transport=polling"):
            status, body = raw_get(port, path, headers={"Origin": rebound["Origin"]},
                                   host_header=rebound["Host"])
            assert status == 400, (path, status, body[:200])
            assert "ALLOWED_HOSTS" in json.loads(body)["error"]
        posted = requests.post(f"{node.url}/api/v1/events", json=[log_event("open", "x")],
                               headers=rebound, timeout=5)
        assert posted.status_code == 400
        # names that cannot be rebound still work: the address, localhost
        assert raw_get(port, "/api/v1/snapshot", host_header=f"localhost:{port}")[0] == 200
        assert raw_get(port, "/api/v1/snapshot")[0] == 200
        client = DashClient(node.url, token=None).connect()
        try:
            assert client.sio.connected
        finally:
            client.close()
    finally:
        node.process.stop()
