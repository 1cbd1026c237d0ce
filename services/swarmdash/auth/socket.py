"""Socket.IO: a viewer token at ``connect``, the token's swarms at ``subscribe``.

The token comes from the ``auth`` payload (``{token: "..."}``), else from an
``Authorization: Bearer`` header of the handshake, else from the ``swarmdash_token`` cookie
(the page's way: the browser sends it with the long-polling requests and with the
websocket handshake). Without a valid token the connection is refused at ``connect``: the
client gets ``connect_error`` with the message and ``data: {error, detail}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from socketio.exceptions import ConnectionRefusedError

from .config import COOKIE, AuthConfig, bearer
from .tokens import ALL_SWARMS, TokenError, Viewer

log = logging.getLogger("swarmdash.auth")


def _cookie(environ: Mapping[str, Any]) -> str | None:
    from werkzeug.http import parse_cookie

    value = parse_cookie(str(environ.get("HTTP_COOKIE", ""))).get(COOKIE)
    return value or None


def token_of(payload: Any, environ: Mapping[str, Any]) -> str | None:
    if isinstance(payload, dict) and isinstance(payload.get("token"), str):
        return str(payload["token"])
    return bearer(environ.get("HTTP_AUTHORIZATION")) or _cookie(environ)


class SocketGate:
    """The viewer behind every connection of this node, by session id."""

    def __init__(self, config: AuthConfig):
        self.config = config
        self.viewers: dict[str, Viewer] = {}

    def admit(self, sid: str, payload: Any, environ: Mapping[str, Any]) -> Viewer:
        """The viewer of a new connection, or :class:`ConnectionRefusedError`."""
        try:
            viewer = self.config.viewer(token_of(payload, environ))
        except TokenError as exc:
            raise ConnectionRefusedError(f"unauthorized: {exc.detail}",
                                         {"error": "unauthorized", "reason": exc.reason,
                                          "detail": exc.detail}) from None
        self.viewers[sid] = viewer
        return viewer

    def refresh(self, sid: str, payload: Any, held: set[str]) -> dict[str, Any]:
        """``refresh_token``: the ack; on success ``sid``'s viewer is the new token's.

        The new token must see every swarm in ``held`` (what the client is subscribed to):
        a refresh does not quietly narrow or widen what a live connection streams.
        """
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str):
            return {"ok": False, "error": "bad_request",
                    "detail": "payload must be an object like {token: \"...\"}"}
        if sid not in self.viewers:
            return {"ok": False, "error": "unauthorized", "reason": "expired",
                    "detail": "this connection has no viewer: connect again"}
        try:
            viewer = self.config.viewer(token)
        except TokenError as exc:
            return {"ok": False, "error": "unauthorized", "reason": exc.reason,
                    "detail": exc.detail}
        hidden = sorted(s for s in held if not viewer.may_see(s))
        if hidden:
            return {"ok": False, "error": "forbidden", "swarm": hidden[0],
                    "detail": f"the new token may not see swarm {hidden[0]!r}, which this "
                              "connection is subscribed to: unsubscribe first"}
        self.viewers[sid] = viewer
        return {"ok": True, "viewer": viewer.describe()}

    def refusal(self, sid: str, swarm: str) -> dict[str, Any] | None:
        """The ack refusing a subscription to ``swarm``, or None when the viewer may see it."""
        viewer = self.viewers.get(sid)
        if viewer is None or viewer.expired():
            return {"ok": False, "error": "unauthorized",
                    "detail": "the viewer token has expired: sign in again"}
        if viewer.may_see(swarm):
            return None
        detail = ("swarm '*' (every swarm) needs an all-swarms token" if swarm == ALL_SWARMS
                  else f"this token may not see swarm {swarm!r}")
        return {"ok": False, "error": "forbidden", "detail": detail, "swarm": swarm}

    def forget(self, sid: str) -> None:
        self.viewers.pop(sid, None)
