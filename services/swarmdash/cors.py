"""CORS for the HTTP API, from the same ``CORS_ALLOWED_ORIGINS`` as the Socket.IO endpoint.

Empty: same origin only (no headers are needed). A listed origin, or any with ``*``, gets
``Access-Control-Allow-Origin`` on ``/api/`` responses, preflights included; other origins
get no CORS headers, so browsers keep them out.
"""

from __future__ import annotations

from flask import Flask, Response, request

API_PREFIX = "/api/"


def install(app: Flask, origins: tuple[str, ...]) -> None:
    if not origins:
        return
    anyone = "*" in origins
    allowed = set(origins)

    @app.after_request
    def add_cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if not origin or not request.path.startswith(API_PREFIX):
            return response
        if anyone or origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.vary.add("Origin")
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
                response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
                response.headers["Access-Control-Max-Age"] = "600"
        return response
