"""CORS of the HTTP API, from the same ``CORS_ALLOWED_ORIGINS`` as the Socket.IO endpoint.

A request to ``/api/`` or ``/login`` with an ``Origin`` header that is neither the node's
own origin nor listed (``*``: any) is refused with 403 and a JSON error: a foreign page can
neither read nor trigger anything. A listed origin gets ``Access-Control-Allow-Origin``,
preflights (``OPTIONS``) included. Requests without ``Origin`` (agents, curl, Prometheus)
are not from a browser page and pass. See :mod:`swarmdash.auth.origins`.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from .auth.origins import OriginPolicy, own_origins

API_PREFIX = "/api/"
GUARDED = (API_PREFIX, "/login", "/logout")
ALLOW_HEADERS = "Content-Type, Authorization, Idempotency-Key, X-Swarmdash-Mode"


def install(app: Flask, policy: OriginPolicy) -> None:
    @app.before_request
    def refuse_foreign_origin() -> tuple[Response, int] | None:
        origin = request.headers.get("Origin")
        if not origin or not request.path.startswith(GUARDED):
            return None
        if policy.allows(origin, request.environ):
            return None
        return jsonify({"error": f"origin {origin[:200]!r} is not allowed "
                                 "(CORS_ALLOWED_ORIGINS)"}), 403

    @app.after_request
    def add_cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if not origin or not request.path.startswith(API_PREFIX):
            return response
        if origin.rstrip("/").lower() in own_origins(request.environ):
            return response  # same origin: no CORS headers needed
        if policy.cross_origin_allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.vary.add("Origin")
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
                response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
                response.headers["Access-Control-Max-Age"] = "600"
        return response
