"""GET /api/v1/events and /api/v1/snapshot with generated query strings, in-process.

A bad parameter is a 400 naming it; a good query is a 200 whose events all match the
filter, in stream order, at most ``limit`` of them, after the ``since`` cursor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from swarmdash.node import node_of
from tests.fuzz.conftest import EXAMPLES, Credentials, fuzz
from tests.fuzz.strategies import AGENT_ID, CHANNELS, NAME, query_strings
from tests.helpers import id_key

SEEDED_AGENTS = ("a1", "a2", "a3")
CRITICAL = ("error", "offline")
PAGE_LIMIT = 1000  # EVENTS_PAGE_LIMIT's default


@pytest.fixture(scope="module")
def http(redis_app: Flask) -> Iterator[FlaskClient]:
    """The node, with a hundred events of every type in two swarms (few: every answer
    without ``since`` reads the stream's tail, and the run makes thousands of them)."""
    client = redis_app.test_client()
    statuses = ("idle", "busy", "error", "offline")
    for i in range(20):
        batch = []
        for swarm in ("alpha", "beta"):
            agent = SEEDED_AGENTS[i % 3]
            batch += [
                {"type": "agent", "swarm": swarm, "agent_id": agent,
                 "data": {"status": statuses[i % 4]}},
                {"type": "log", "swarm": swarm, "agent_id": agent,
                 "data": {"level": "info", "message": f"m{i}"}},
            ]
        kind = ("task", "metric", "alert")[i % 3]
        data = {"task": {"task_id": f"t{i}", "status": "running"},
                "metric": {"name": "cpu", "value": i},
                "alert": {"severity": "warning", "message": "hot"}}[kind]
        batch.append({"type": kind, "swarm": "alpha", "agent_id": "a1", "data": data})
        res = client.post("/api/v1/events", json=batch[:5],
                          headers=Credentials.ingest_headers("all"))
        assert res.status_code == 202, res.get_json()
    yield client


def _problems(params: dict[str, str], last: tuple[int, int]) -> list[str]:
    """Names of the parameters the contract refuses (docs/protocol.md, GET /api/v1/events)."""
    bad = []
    swarm = params.get("swarm", "")
    if swarm not in ("", "*") and not NAME.fullmatch(swarm):
        bad.append("swarm")
    agent = params.get("agent_id", "")
    if agent and not AGENT_ID.fullmatch(agent):
        bad.append("agent_id")
    channels = [c for c in params.get("channels", "").split(",") if c]
    if any(c not in CHANNELS for c in channels):
        bad.append("channel")
    limit = params.get("limit")
    if limit is not None and not (limit.isascii() and limit.isdigit() and limit.lstrip("0")):
        bad.append("limit")
    since = params.get("since")
    if since and not _cursor_ok(since, last):
        bad.append("since")
    return bad


def _cursor_ok(text: str, last: tuple[int, int]) -> bool:
    """A cursor as the node issues them (docs/protocol.md, The cursor), not past ``last``."""
    if len(text) > 512:
        return False
    head, *rest = text.split(";")
    base = _stream_id(head)
    if base is None or base > last:
        return False
    seen = set()
    for part in rest:
        key, sep, value = part.partition("=")
        sid = _stream_id(value)
        if not sep or key not in (*CHANNELS, "alert") or key in seen or sid is None \
                or sid > base:
            return False
        seen.add(key)
    return True


def _stream_id(text: str) -> tuple[int, int] | None:
    ms, sep, seq = text.partition("-")
    parts = [ms, seq] if sep else [ms]
    if not all(p.isascii() and p.isdigit() and len(p) <= 20 and int(p) < 2**64 for p in parts):
        return None
    return int(ms), int(seq) if sep else 0


def _matches(event: dict[str, Any], params: dict[str, str]) -> bool:
    swarm = params.get("swarm") or "*"
    channels = [c for c in params.get("channels", "").split(",") if c] or list(CHANNELS)
    critical = event["type"] == "agent" and event["data"].get("status") in CRITICAL
    return ((swarm == "*" or event["swarm"] == swarm)
            and (not params.get("agent_id") or event["agent_id"] == params["agent_id"])
            and (event["type"] in channels or event["type"] == "alert" or critical))


_PATHS = st.sampled_from(["/api/v1/events", "/api/v1/events", "/api/v1/snapshot"])
_TOKENS = st.sampled_from(["ok"] * 8 + ["none", "garbage", "cookie"])


def test_queries_answer_400_naming_the_parameter_or_exactly_the_matching_events(
        http: FlaskClient, redis_app: Flask) -> None:
    log = node_of(redis_app).event_log
    token = Credentials.viewer_token()
    seen = {"ok": 0, "bad": 0}

    @fuzz(EXAMPLES)
    @given(path=_PATHS, params=query_strings(), auth=_TOKENS)
    def run(path: str, params: dict[str, str], auth: str) -> None:
        http.delete_cookie("swarmdash_token")
        headers = {}
        if auth == "ok":
            headers["Authorization"] = f"Bearer {token}"
        elif auth == "garbage":
            headers["Authorization"] = "Bearer not-a-token"
        elif auth == "cookie":
            http.set_cookie("swarmdash_token", token)
        res = http.get(path, query_string=params, headers=headers)
        body = res.get_json(silent=True)
        assert res.status_code < 500, (res.status_code, body)
        assert isinstance(body, dict), res.data[:200]
        if auth in ("none", "garbage"):
            assert res.status_code == 401 and body["error"], body
            return
        snapshot = path.endswith("snapshot")
        problems = _problems({k: v for k, v in params.items()
                              if not snapshot or k not in ("limit", "since")}, log.last_id())
        if problems:
            assert res.status_code == 400, (problems, body)
            assert isinstance(body.get("error"), str)
            assert any(p in body["error"] for p in problems), (problems, body["error"])
            seen["bad"] += 1
            return
        assert res.status_code == 200, (params, body)
        seen["ok"] += 1
        if snapshot:
            for row in body["agents"] + body["tasks"]:
                assert not params.get("agent_id") or row["agent_id"] == params["agent_id"]
                assert params.get("swarm", "*") in ("*", "", row["swarm"])
            return
        events = body["events"]
        limit = params.get("limit", "").lstrip("0")
        assert len(events) <= (min(int(limit), PAGE_LIMIT) if 0 < len(limit) < 6 else PAGE_LIMIT)
        assert all(_matches(e, params) for e in events), params
        ids = [id_key(e["id"]) for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        if params.get("since"):
            floor = min(_stream_id(p.partition("=")[2] or p) or (0, 0)
                        for p in params["since"].split(";"))
            assert all(i > floor for i in ids)

    run()
    assert seen["ok"] > EXAMPLES // 20 and seen["bad"] > EXAMPLES // 20, seen
