"""HTTP: ingest, snapshot, events (the polling fallback), health, metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import codec, metrics, registry
from .auth.web import refuse_swarms
from .cursor import event_id, format_id
from .eventlog import BackendUnavailable, BatchKey, IdempotencyConflict, StateLimitExceeded
from .events import CHANNELS, ValidationError, batch_digest, valid_idempotency_key, validate_batch
from .node import Node, current_node
from .ratelimit import ANONYMOUS, RateLimiter
from .subscription import SubscribeError, check_since, from_query, parse_since, scan_since

api = Blueprint("api", __name__)
#: A client-chosen batch name: a retry with the same key is stored once (IDEMPOTENCY_TTL).
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Sent by a dashboard polling GET /api/v1/events because its socket failed (value: fallback).
MODE_HEADER = "X-Swarmdash-Mode"
#: On every response: the node that answered (behind a round-robin proxy, which one did).
NODE_HEADER = "X-Swarmdash-Node"


def error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


def unavailable(exc: BackendUnavailable, what: str = "", *, store: str = "event store",
                component: str = "api") -> tuple[Response, int]:
    """The 503 of a store that cannot answer now: retry after a second."""
    metrics.REDIS_ERRORS.labels(component=component).inc()
    response, status = error(503, f"{store} unavailable{what}; retry"
                             + (f" (with the same {IDEMPOTENCY_HEADER})" if what else ""),
                             detail=str(exc)[:200])
    response.headers["Retry-After"] = "1"
    return response, status


@api.post("/api/v1/events")
def ingest() -> tuple[Response, int]:
    node = current_node()
    s = node.settings
    if not request.is_json:
        metrics.INGEST_REJECTED.labels(reason="content_type").inc()
        return error(415, "send the events as JSON (Content-Type: application/json)")
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not valid_idempotency_key(key):
        metrics.INGEST_REJECTED.labels(reason="invalid").inc()
        return error(400, f"{IDEMPOTENCY_HEADER} must be 1-128 characters of [A-Za-z0-9_.:-]")
    raw = request.get_data(cache=False)  # over MAX_PAYLOAD_BYTES: 413 (see too_large)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        metrics.INGEST_REJECTED.labels(reason="invalid_json").inc()
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return error(400, f"invalid JSON: {why}")
    if isinstance(body, list) and len(body) > s.max_events_per_request:
        metrics.INGEST_REJECTED.labels(reason="too_many").inc()
        return error(413, f"{len(body)} events, limit {s.max_events_per_request} per request")
    try:
        events = validate_batch(body, max_events=s.max_events_per_request,
                                max_event_bytes=s.max_event_bytes)
    except ValidationError as exc:
        metrics.INGEST_REJECTED.labels(reason="invalid").inc()
        return error(400, "invalid event(s); nothing was accepted", errors=exc.errors[:100])
    refused = refuse_swarms(e["swarm"] for e in events)  # the API key's swarms only
    if refused is not None:
        metrics.INGEST_REJECTED.labels(reason="forbidden").inc()
        return refused, 403
    limited = _rate_limit(node.rate_limiter, len(events))
    if limited is not None:
        return limited
    # A key names a batch of the API key that sent it, never another key's batch.
    batch = None if key is None else BatchKey(_key_id(), key, batch_digest(body))
    try:
        ids, duplicate = node.event_log.append_once(events, batch)
    except BackendUnavailable as exc:
        metrics.INGEST_REJECTED.labels(reason="unavailable").inc()
        return unavailable(exc, ", nothing was accepted")
    except IdempotencyConflict as exc:
        metrics.INGEST_REJECTED.labels(reason="idempotency_conflict").inc()
        return error(409, str(exc), idempotency_key=key)
    except StateLimitExceeded as exc:  # a runaway publisher must not grow every snapshot
        metrics.INGEST_REJECTED.labels(reason="state_limit").inc()
        return error(422, str(exc), limit=exc.setting, swarm=exc.swarm, value=exc.limit)
    result: dict[str, Any] = {"accepted": len(ids), "cursor": ids[-1], "ids": ids}
    if duplicate:  # a retry of a batch already stored under this key: stored once
        result["duplicate"] = True
    else:
        for event in events:
            metrics.EVENTS_INGESTED.labels(type=event["type"], source="http").inc()
    return jsonify(result), 202


def _key_id() -> str:
    """The id of the API key that sent the request (one shared id with auth off)."""
    return getattr(g, "api_key_id", None) or ANONYMOUS


def _rate_limit(limiter: RateLimiter, cost: int) -> tuple[Response, int] | None:
    """None when the caller's key may ingest ``cost`` more events now, else the refusal."""
    key_id = _key_id()
    try:
        decision = limiter.take(key_id, cost)
    except BackendUnavailable as exc:
        metrics.INGEST_REJECTED.labels(reason="unavailable").inc()
        return unavailable(exc, ", nothing was accepted")
    if decision.allowed:
        return None
    metrics.INGEST_REJECTED.labels(reason="rate_limited").inc()
    response, status = error(
        429, f"rate limit of {limiter.rate:g} events/s (burst {limiter.burst}) for key "
        f"{key_id!r} exceeded; nothing was accepted; retry after "
        f"{decision.retry_after:.3f} s", retry_after=round(decision.retry_after, 3))
    response.headers["Retry-After"] = decision.retry_after_header
    return response, status


def _limit(raw: str | None, page_limit: int) -> int:
    if raw is None:
        return page_limit
    digits = raw.lstrip("0")
    if not raw.isascii() or not raw.isdigit() or not digits:
        raise ValueError(f"limit must be a whole number >= 1, not {raw[:20]!r}")
    return page_limit if len(digits) > 12 else min(int(digits), page_limit)


@api.get("/api/v1/snapshot")
def snapshot() -> tuple[Response, int]:
    node = current_node()
    try:
        sub = from_query(request.args)
    except ValueError as exc:
        return error(400, str(exc))
    try:
        snap = node.event_log.snapshot(sub.scope)
    except BackendUnavailable as exc:
        return unavailable(exc)
    return jsonify(snap.view(sub.agent_id)), 200


@api.get("/api/v1/events")
def events() -> tuple[Response, int]:
    """Events after ``since`` matching the filter; the cursor continues where this stopped."""
    node = current_node()
    s = node.settings
    if request.headers.get(MODE_HEADER) == "fallback":
        metrics.FALLBACK_POLLS.inc()
    try:
        sub = from_query(request.args)
        limit = _limit(request.args.get("limit"), s.events_page_limit)
        since_raw = request.args.get("since")
        since = parse_since(since_raw) if since_raw else None
    except ValueError as exc:
        return error(400, str(exc))
    log = node.event_log
    try:
        if since is None:
            recent = log.tail(limit * 4)
            found = [e for e in recent if sub.matches(e)][-limit:]
            head = event_id(recent[-1]) if recent else log.last_id()
            return jsonify({"events": found, "cursor": format_id(head), "gap": False}), 200
        gap = check_since(log, since)
        page = scan_since(log, sub, since, limit, scan_limit=limit * 20)
    except SubscribeError as exc:  # a cursor beyond the end of the log
        return error(400, exc.detail)
    except BackendUnavailable as exc:
        return unavailable(exc)
    return jsonify({"events": page.events, "cursor": since.advanced(page.position).encode(),
                    "gap": gap}), 200


@api.get("/api/v1/cluster")
def cluster() -> tuple[Response, int]:
    """Live nodes (heartbeat within HEARTBEAT_TTL) and the totals across them."""
    return _from_registry(lambda node: registry.summary(node.registry.live()))


@api.get("/api/v1/cluster/targets")
def cluster_targets() -> tuple[Response, int]:
    """Prometheus HTTP service discovery: every node seen within TARGET_RETENTION."""
    return _from_registry(lambda node: registry.prometheus_targets(
        node.registry.targets(node.settings.target_retention)))


def _from_registry(read: Callable[[Node], Any]) -> tuple[Response, int]:
    """What ``read`` finds in the cluster registry as JSON, or 503 when it cannot answer."""
    try:
        return jsonify(read(current_node())), 200
    except BackendUnavailable as exc:
        return unavailable(exc, store="cluster registry", component="registry")


@api.get("/health")
def health() -> tuple[Response, int]:
    body, status = health_answer(current_node())
    return jsonify(body), status


def health_answer(node: Node) -> tuple[dict[str, Any], int]:
    """What GET /health answers (also in front of Flask: :func:`answer_health_first`)."""
    body, ok = node.health()
    if node.settings.auth_disabled:
        body["auth"] = "disabled"
        body["warning"] = "AUTH_DISABLED=true: anyone may publish and watch (demo only)"
    else:
        body["auth"] = "enabled"
    return body, 200 if ok else 503


def answer_health_first(wsgi_app: Any, node: Node) -> Any:
    """``GET /health`` answered before Flask and Socket.IO's middleware: HAProxy asks it
    several times a second per node, and the request machinery it skips (request context,
    session, routing, hooks) and the route were two thirds of what such a request cost a
    node. Every other request, and HEAD /health, goes on to ``wsgi_app``."""
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != "/health" or environ.get("REQUEST_METHOD") != "GET":
            return wsgi_app(environ, start_response)
        body, status = health_answer(node)
        data = codec.dumps(body).encode() + b"\n"
        start_response("200 OK" if status == 200 else "503 SERVICE UNAVAILABLE",
                       [("Content-Type", "application/json"),
                        ("Content-Length", str(len(data)))])
        return [data]
    return app


@api.get("/health/redis")
def health_redis() -> tuple[Response, int]:
    """Whether this node reaches Redis now (a fresh ping): what a peer that lost Redis asks
    to tell its own outage from everyone's (storewatch.py)."""
    node = current_node()
    ok = node.event_log.embedded or node.event_log.ping()
    return jsonify({"node": node.settings.node_name,
                    "redis": "ok" if ok else "unreachable"}), 200 if ok else 503


@api.get("/metrics")
def prometheus() -> Response:
    return Response(metrics.exposition(), mimetype="text/plain; version=0.0.4")


@api.get("/api/v1/config")
def client_config() -> tuple[Response, int]:
    """What a dashboard needs to know to connect and to fall back (from the node's settings)."""
    s = current_node().settings
    return jsonify({
        "node": s.node_name,
        "transports": ["polling", "websocket"] if s.websocket_enabled else ["polling"],
        "ping_interval": s.websocket_ping_interval,
        "ping_timeout": s.websocket_ping_timeout,
        "max_reconnect_attempts": s.websocket_max_reconnect_attempts,
        "fallback_threshold": s.websocket_fallback_threshold,
        "reconnect_delay_ms": s.websocket_reconnect_delay_ms,
        "reconnect_delay_max_ms": s.websocket_reconnect_delay_max_ms,
        "fallback_poll_interval_ms": s.fallback_poll_interval_ms,
        "probe_interval_ms": s.fallback_probe_interval_ms,
        "events_page_limit": s.events_page_limit,
        "batch_windows_ms": {c: round(w * 1000) for c, w in s.batch_windows.items()},
        "channels": list(CHANNELS),
    }), 200


@cache
def _openapi_document() -> bytes:
    return resources.files(__package__).joinpath("openapi.json").read_bytes()


@api.get("/api/v1/openapi.json")
def openapi() -> Response:
    """This HTTP API in OpenAPI 3.1 (services/swarmdash/openapi.json, shipped with the package)."""
    return Response(_openapi_document(), mimetype="application/json")


@api.after_app_request
def name_the_node(response: Response) -> Response:
    response.headers[NODE_HEADER] = current_node().settings.node_name
    return response


@api.app_errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge) -> tuple[Response, int]:
    metrics.INGEST_REJECTED.labels(reason="too_large").inc()
    limit = current_node().settings.max_payload_bytes
    return error(413, f"request body over MAX_PAYLOAD_BYTES ({limit} bytes)")


@api.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[Response, int]:
    return error(exc.code or 500, exc.description or exc.name)
