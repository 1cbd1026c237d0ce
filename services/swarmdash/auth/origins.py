"""The origin policy: which web pages may call the API and open a Socket.IO connection.

A browser sends ``Origin`` with cross-origin requests (and with same-origin POSTs and
websocket handshakes). Allowed: the node's own origin (scheme from ``X-Forwarded-Proto``
when a proxy terminates TLS, host from ``Host``), and every origin of
``CORS_ALLOWED_ORIGINS`` (``*``: any, refused in production). A request without
``Origin`` (curl, agents, Prometheus) is not a browser page and passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def request_scheme(environ: Mapping[str, Any]) -> str:
    forwarded = str(environ.get("HTTP_X_FORWARDED_PROTO", "")).split(",")[0].strip().lower()
    return forwarded if forwarded in ("http", "https") else str(environ.get("wsgi.url_scheme",
                                                                            "http"))


def own_origins(environ: Mapping[str, Any]) -> set[str]:
    """The origins of this request's own site (as it reached the node and the proxy)."""
    host = str(environ.get("HTTP_HOST", "")).strip()
    if not host:
        return set()
    return {f"{request_scheme(environ)}://{host}".lower(),
            f"{environ.get('wsgi.url_scheme', 'http')}://{host}".lower()}


class OriginPolicy:
    def __init__(self, allowed: tuple[str, ...]):
        self.anyone = "*" in allowed
        self.allowed = {o.rstrip("/").lower() for o in allowed if o != "*"}

    def cross_origin_allowed(self, origin: str) -> bool:
        return self.anyone or origin.rstrip("/").lower() in self.allowed

    def allows(self, origin: str | None, environ: Mapping[str, Any]) -> bool:
        if not origin:
            return True
        origin = origin.rstrip("/").lower()
        return origin in own_origins(environ) or self.cross_origin_allowed(origin)

    def socketio(self, origin: str | None, environ: Mapping[str, Any]) -> bool:
        """For python-engineio's ``cors_allowed_origins`` (a callable)."""
        return self.allows(origin, environ)
