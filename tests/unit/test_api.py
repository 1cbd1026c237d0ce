"""The HTTP API in-process (Flask test client) with the embedded in-memory log."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from swarmdash.cursor import Cursor, parse_id
from swarmdash.eventlog.redis import RedisEventLog
from swarmdash.node import Node, node_of
from swarmdash.redisconn import connect
from swarmdash.subscription import AHEAD


@pytest.fixture
def http(app: Flask) -> FlaskClient:
    return app.test_client()


def post(http: FlaskClient, body: Any) -> Any:
    return http.post("/api/v1/events", json=body)


def stored(node: Node) -> list[dict[str, Any]]:
    return node.event_log.read((0, 0), 100_000)


# --- ingest ---------------------------------------------------------------------------------

def test_ingest_accepts_a_batch(http: FlaskClient, node: Node, ev: Any) -> None:
    res = post(http, [ev.agent("a1"), ev.log("hi"), ev.task("t1", "queued")])
    assert res.status_code == 202
    body = res.get_json()
    assert body["accepted"] == 3
    assert body["cursor"] == body["ids"][-1]
    assert [e["id"] for e in stored(node)] == body["ids"]


def test_ingest_accepts_a_single_event_and_fills_ts(http: FlaskClient, node: Node) -> None:
    res = post(http, {"type": "metric", "swarm": "alpha", "agent_id": "a1",
                      "data": {"name": "cpu", "value": 3}})
    assert res.status_code == 202 and res.get_json()["accepted"] == 1
    [event] = stored(node)
    assert event["ts"] > 1_600_000_000


def test_invalid_batch_is_refused_whole_with_per_item_errors(http: FlaskClient, node: Node,
                                                             ev: Any) -> None:
    res = post(http, [ev.agent("a1"), ev.log("x", level="loud"), ev.metric(value=None)])
    assert res.status_code == 400
    body = res.get_json()
    assert "nothing was accepted" in body["error"]
    assert sorted((e["index"], e["field"]) for e in body["errors"]) == [
        (1, "data.level"), (2, "data.value")]
    assert stored(node) == []


def test_unknown_field_is_refused(http: FlaskClient, ev: Any) -> None:
    res = post(http, {**ev.agent(), "id": "1-0"})
    assert res.status_code == 400
    assert res.get_json()["errors"][0]["field"] == "id"


def test_malformed_type_is_a_400_not_a_crash(http: FlaskClient, ev: Any) -> None:
    res = post(http, [ev.agent(), {**ev.agent(), "type": ["agent"]}])
    assert res.status_code == 400
    assert [(e["index"], e["field"]) for e in res.get_json()["errors"]] == [(1, "type")]


def test_invalid_json_is_a_400(http: FlaskClient) -> None:
    res = http.post("/api/v1/events", data="{not json", content_type="application/json")
    assert res.status_code == 400
    assert "invalid JSON" in res.get_json()["error"]


def test_non_json_is_a_415(http: FlaskClient, node: Node, ev: Any) -> None:
    res = http.post("/api/v1/events", data=json.dumps(ev.agent()), content_type="text/plain")
    assert res.status_code == 415
    assert stored(node) == []


def test_too_many_events_is_a_413(make_app: Callable[..., Flask], ev: Any) -> None:
    app = make_app(MAX_EVENTS_PER_REQUEST="3")
    http = app.test_client()
    res = post(http, [ev.log() for _ in range(4)])
    assert res.status_code == 413
    assert "limit 3" in res.get_json()["error"]
    assert stored(node_of(app)) == []
    assert post(http, [ev.log() for _ in range(3)]).status_code == 202


def test_too_many_bytes_is_a_413(make_app: Callable[..., Flask], ev: Any) -> None:
    app = make_app(MAX_PAYLOAD_BYTES="2048")
    http = app.test_client()
    res = post(http, [ev.log("x" * 500) for _ in range(5)])
    assert res.status_code == 413
    assert "MAX_PAYLOAD_BYTES (2048 bytes)" in res.get_json()["error"]
    assert stored(node_of(app)) == []
    assert 'swarmdash_ingest_rejected_total{reason="too_large"}' in http.get(
        "/metrics").get_data(as_text=True)


def test_too_large_event_is_a_400(make_app: Callable[..., Flask], ev: Any) -> None:
    app = make_app(MAX_EVENT_BYTES="256")
    res = post(app.test_client(), [ev.log("short"), ev.log("y" * 300)])
    assert res.status_code == 400
    assert res.get_json()["errors"][0]["index"] == 1


# --- snapshot -------------------------------------------------------------------------------

def test_snapshot(http: FlaskClient, ev: Any) -> None:
    post(http, [ev.agent("a1", "idle"), ev.agent("a2", "busy"), ev.agent("a1", "busy"),
                ev.task("t1", "running"), ev.agent("b1", swarm="beta")])
    last = post(http, [ev.log()]).get_json()["cursor"]
    res = http.get("/api/v1/snapshot?swarm=alpha")
    assert res.status_code == 200
    body = res.get_json()
    assert body["cursor"] == last
    assert [(e["agent_id"], e["data"]["status"]) for e in body["agents"]] == [
        ("a2", "busy"), ("a1", "busy")]
    assert [e["data"]["task_id"] for e in body["tasks"]] == ["t1"]
    every = http.get("/api/v1/snapshot").get_json()
    assert {e["agent_id"] for e in every["agents"]} == {"a1", "a2", "b1"}
    one = http.get("/api/v1/snapshot?swarm=alpha&agent_id=a2").get_json()
    assert [e["agent_id"] for e in one["agents"]] == ["a2"]


@pytest.mark.parametrize("query", ["swarm=bad%20name", "agent_id=a%20b"])
def test_snapshot_bad_filter(http: FlaskClient, query: str) -> None:
    assert http.get(f"/api/v1/snapshot?{query}").status_code == 400


# --- events (the polling fallback) ---------------------------------------------------------

def test_events_without_since_gives_recent_events_and_a_cursor(http: FlaskClient,
                                                               ev: Any) -> None:
    ids = post(http, [ev.log(str(i)) for i in range(5)]).get_json()["ids"]
    body = http.get("/api/v1/events?limit=2").get_json()
    assert [e["id"] for e in body["events"]] == ids[-2:]
    assert body["cursor"] == ids[-1] and body["gap"] is False
    empty = http.get(f"/api/v1/events?since={ids[-1]}").get_json()
    assert empty["events"] == [] and empty["cursor"] == ids[-1]


def test_events_pages_continue_without_gaps_or_repeats(http: FlaskClient, ev: Any) -> None:
    start = post(http, [ev.log("start")]).get_json()["cursor"]
    mix = [ev.agent(f"a{i % 3}") if i % 3 == 0 else ev.log(str(i)) if i % 3 == 1
           else ev.metric(value=i, swarm="beta") for i in range(40)]
    ids = post(http, mix).get_json()["ids"]
    wanted = [i for i, e in zip(ids, mix, strict=True) if e["swarm"] == "alpha"]
    seen: list[str] = []
    cursor = start
    for _ in range(50):
        res = http.get(f"/api/v1/events?since={cursor}&swarm=alpha&limit=4")
        assert res.status_code == 200
        body = res.get_json()
        assert body["gap"] is False
        assert len(body["events"]) <= 4
        if not body["events"]:
            break
        seen.extend(e["id"] for e in body["events"])
        cursor = body["cursor"]
    assert seen == wanted
    # polling again after new events continues from the cursor
    more = post(http, [ev.log("late")]).get_json()["ids"]
    body = http.get(f"/api/v1/events?since={cursor}&swarm=alpha").get_json()
    assert [e["id"] for e in body["events"]] == more


def test_events_filters_channels_and_agent(http: FlaskClient, ev: Any) -> None:
    start = post(http, [ev.log("start")]).get_json()["cursor"]
    ids = post(http, [ev.agent("a1"), ev.log("x", agent_id="a1"), ev.log("y", agent_id="a2"),
                      ev.alert(agent_id="a2"), ev.agent("a2", "offline")]).get_json()["ids"]
    body = http.get(f"/api/v1/events?since={start}&channels=log&agent_id=a2").get_json()
    assert [e["id"] for e in body["events"]] == [ids[2], ids[3], ids[4]]  # + alert, critical
    body = http.get(f"/api/v1/events?since={start}&channels=agent").get_json()
    assert [e["id"] for e in body["events"]] == [ids[0], ids[3], ids[4]]


def test_events_honours_a_composite_cursor(http: FlaskClient, ev: Any) -> None:
    ids = post(http, [ev.log("1"), ev.agent("a1"), ev.log("2"), ev.agent("a2")]).get_json()["ids"]
    since = Cursor.from_positions(parse_id(ids[1]), {"log": parse_id(ids[0])}).encode()
    body = http.get(f"/api/v1/events?since={since}").get_json()
    assert [e["id"] for e in body["events"]] == [ids[2], ids[3]]
    assert body["cursor"] == ids[3]


def test_events_reports_a_gap_for_a_trimmed_cursor(make_app: Callable[..., Flask],
                                                   ev: Any) -> None:
    app = make_app(STREAM_MAXLEN="100")
    http = app.test_client()
    ids = post(http, [ev.log(str(i)) for i in range(130)]).get_json()["ids"]
    body = http.get(f"/api/v1/events?since={ids[0]}&limit=1000").get_json()
    assert body["gap"] is True
    assert [e["id"] for e in body["events"]] == ids[30:]
    ok = http.get(f"/api/v1/events?since={ids[29]}").get_json()
    assert ok["gap"] is False


@pytest.mark.parametrize("query", [
    "since=garbage", "since=5-0;log=9-0", "since=1-0;nope=0-1", "channels=log,bogus",
    "channels=alert", "limit=0", "limit=x", "swarm=no%20spaces"])
def test_events_bad_query_is_a_400(http: FlaskClient, query: str) -> None:
    res = http.get(f"/api/v1/events?{query}")
    assert res.status_code == 400
    assert res.get_json()["error"]


def test_events_refuses_a_cursor_ahead_of_the_stream(http: FlaskClient, ev: Any) -> None:
    post(http, [ev.log()])
    res = http.get("/api/v1/events?since=99999999999999-0")
    assert res.status_code == 400
    assert res.get_json()["error"] == AHEAD == \
        "since: cursor is ahead of the stream (not issued here)"  # as docs/protocol.md says


# --- health and metrics ---------------------------------------------------------------------

def test_health(http: FlaskClient) -> None:
    res = http.get("/health")
    assert res.status_code == 200
    body = res.get_json()
    assert body["node"] == "unit-node"
    assert body["websocket_clients"] == 0
    assert isinstance(body["uptime"], int | float) and body["uptime"] >= 0
    assert body["version"]
    assert body["redis"] == "embedded"
    assert body["status"] == "ok"


def test_health_is_answered_in_front_of_flask_with_the_routes_answer(
        make_app: Callable[..., Flask]) -> None:
    """HAProxy asks GET /health several times a second per node: it is answered before
    Flask's request machinery (no request hook runs), with what the Flask route (HEAD, and
    any other caller) answers, the same JSON and status."""
    app = make_app()
    hooks: list[str] = []
    app.before_request(lambda: hooks.append("flask"))  # type: ignore[arg-type, func-returns-value]
    http = app.test_client()
    fast = http.get("/health?from=haproxy")
    assert fast.status_code == 200 and fast.mimetype == "application/json"
    assert hooks == [], "GET /health went through Flask"
    with app.test_request_context("/health"):
        from swarmdash.api import health

        routed, status = health()
    assert status == 200
    body, routed_body = fast.get_json(), routed.get_json()
    body.pop("uptime"), routed_body.pop("uptime")
    assert body == routed_body and body["auth"] in ("enabled", "disabled")
    assert http.head("/health").status_code == 200 and hooks == ["flask"]
    assert http.get("/api/v1/config").status_code == 200 and hooks == ["flask", "flask"]


def test_metrics(http: FlaskClient, ev: Any) -> None:
    post(http, [ev.log()])
    post(http, [ev.log(level="nope")])
    res = http.get("/metrics")
    assert res.status_code == 200
    text = res.get_data(as_text=True)
    assert "swarmdash_events_ingested_total" in text
    assert 'swarmdash_ingest_rejected_total{reason="invalid"}' in text
    assert "swarmdash_connected_clients" in text


def test_unknown_route_answers_json(http: FlaskClient) -> None:
    res = http.get("/api/v1/nothing")
    assert res.status_code == 404
    assert "error" in res.get_json()


# --- Redis unreachable ----------------------------------------------------------------------

def test_unreachable_store_answers_503(make_app: Callable[..., Flask], closed_url: str,
                                       ev: Any) -> None:
    app = make_app(event_log=RedisEventLog(connect(closed_url, 0.2)))
    http = app.test_client()
    res = post(http, [ev.agent()])
    assert res.status_code == 503
    assert res.headers["Retry-After"] == "1"
    assert "nothing was accepted" in res.get_json()["error"]
    health = http.get("/health")
    assert health.status_code == 503
    assert health.get_json()["redis"] == "unreachable"
    assert http.get("/api/v1/snapshot").status_code == 503
    assert http.get("/api/v1/events?since=1-0").status_code == 503


def test_client_config_delivers_the_reconnect_and_fallback_settings(
        make_app: Callable[..., Flask]) -> None:
    app = make_app(WEBSOCKET_MAX_RECONNECT_ATTEMPTS="7", WEBSOCKET_FALLBACK_THRESHOLD="3",
                   WEBSOCKET_ENABLED="false", BATCH_WINDOW_LOG_MS="750",
                   WEBSOCKET_RECONNECT_DELAY_MS="300", WEBSOCKET_RECONNECT_DELAY_MAX_MS="900",
                   FALLBACK_POLL_INTERVAL_MS="500", FALLBACK_PROBE_INTERVAL_MS="4000")
    resp = app.test_client().get("/api/v1/config")
    body = resp.get_json()
    assert resp.headers["X-Swarmdash-Node"] == "unit-node"
    assert body["max_reconnect_attempts"] == 7 and body["fallback_threshold"] == 3
    assert (body["reconnect_delay_ms"], body["reconnect_delay_max_ms"]) == (300, 900)
    assert (body["fallback_poll_interval_ms"], body["probe_interval_ms"]) == (500, 4000)
    assert body["transports"] == ["polling"]
    assert body["ping_interval"] == 25 and body["ping_timeout"] == 60
    assert body["batch_windows_ms"]["log"] == 750 and body["node"] == "unit-node"


def test_cors_headers_only_for_listed_origins(make_app: Callable[..., Flask], ev: Any) -> None:
    app = make_app(CORS_ALLOWED_ORIGINS="https://ops.example.com")
    http = app.test_client()
    ok = http.get("/api/v1/snapshot", headers={"Origin": "https://ops.example.com"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://ops.example.com"
    assert "Origin" in ok.headers["Vary"]
    preflight = http.options("/api/v1/events", headers={
        "Origin": "https://ops.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    foreign = http.get("/api/v1/snapshot", headers={"Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in foreign.headers


def test_no_cors_headers_by_default(app: Flask) -> None:
    res = app.test_client().get("/api/v1/snapshot", headers={"Origin": "https://x.example"})
    assert "Access-Control-Allow-Origin" not in res.headers


def test_idempotency_key_makes_a_retry_safe(http: FlaskClient, node: Node, ev: Any) -> None:
    batch = [ev.log("one"), ev.log("two")]
    first = http.post("/api/v1/events", json=batch, headers={"Idempotency-Key": "k-1"})
    retry = http.post("/api/v1/events", json=batch, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == retry.status_code == 202
    assert retry.get_json()["ids"] == first.get_json()["ids"]
    assert retry.get_json()["duplicate"] is True and "duplicate" not in first.get_json()
    assert len(stored(node)) == 2
    bad = http.post("/api/v1/events", json=batch, headers={"Idempotency-Key": "no spaces"})
    assert bad.status_code == 400 and "Idempotency-Key" in bad.get_json()["error"]
    assert len(stored(node)) == 2


def test_a_different_batch_under_a_used_idempotency_key_is_a_409_naming_it(
        http: FlaskClient, node: Node, ev: Any) -> None:
    first = http.post("/api/v1/events", json=[ev.log("one")], headers={"Idempotency-Key": "k-9"})
    assert first.status_code == 202
    other = http.post("/api/v1/events", json=[ev.log("two")], headers={"Idempotency-Key": "k-9"})
    assert other.status_code == 409, other.get_json()
    assert "'k-9'" in other.get_json()["error"] and other.get_json()["idempotency_key"] == "k-9"
    assert [e["data"]["message"] for e in stored(node)] == ["one"]
