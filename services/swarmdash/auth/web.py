"""The HTTP side: who may call which route, ``/login``, and the page's security headers.

* ``POST /api/v1/events``: an API key (``Authorization: Bearer <key>``), scoped to the
  swarms of the events (see :func:`refuse_swarms`). The key's id is put on
  ``flask.g.api_key_id``.
* Every other ``/api/`` route: a viewer token (``Authorization: Bearer <token>`` or the
  ``swarmdash_token`` cookie), except the public ones (:data:`PUBLIC_ENDPOINTS` and views
  marked with :func:`public`); a ``swarm`` the token does not list is refused (403).
* ``/``, ``/health``, ``/metrics``, ``/static/``, ``/login`` and ``/logout`` need nothing;
  ``POST /login`` and ``POST /logout`` only come from the node's own page (see
  :func:`_cross_site`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask, g, jsonify, redirect, render_template, request
from flask import Response as JsonResponse
from werkzeug.wrappers import Response

from .config import COOKIE, AuthConfig, bearer
from .tokens import ALL_SWARMS, TokenError, Viewer

log = logging.getLogger("swarmdash.auth")
F = TypeVar("F", bound=Callable[..., Any])

INGEST_ENDPOINT = "api.ingest"
#: /api/ routes anyone may call: what a page needs before sign-in, and Prometheus' targets.
PUBLIC_ENDPOINTS = frozenset({"api.client_config", "api.cluster_targets", "api.openapi"})
#: /api/ routes whose ``swarm`` query argument defaults to every swarm (``*``).
SWARM_QUERY_ENDPOINTS = frozenset({"api.events", "api.snapshot"})
API_PREFIX = "/api/"
EXTENSION = "swarmdash.auth"


def public(view: F) -> F:
    """Mark an ``/api/`` view as callable without a viewer token."""
    view.public = True  # type: ignore[attr-defined]
    return view


def auth_config(app: Flask | None = None) -> AuthConfig:
    from flask import current_app

    config: AuthConfig = (app or current_app).extensions[EXTENSION]
    return config


def _error(status: int, message: str, **extra: Any) -> JsonResponse:
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


def unauthorized(message: str, reason: str) -> Response:
    response = _error(401, message, reason=reason)
    challenge = 'Bearer realm="swarmdash"'
    if reason != "missing":
        challenge += ', error="invalid_token"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def forbidden(message: str, **extra: Any) -> JsonResponse:
    return _error(403, message, **extra)


def _agent(config: AuthConfig) -> Response | None:
    key = bearer(request.headers.get("Authorization"))
    if key is None:
        return unauthorized("missing API key: send Authorization: Bearer <key>", "missing")
    found = config.keyring.authenticate(key)
    if found is None:
        return unauthorized("unknown API key", "invalid")
    g.api_key = found
    g.api_key_id = found.id
    return None


def request_viewer(config: AuthConfig) -> Viewer:
    """The viewer of this request (Authorization header first, then the cookie)."""
    token = bearer(request.headers.get("Authorization")) or request.cookies.get(COOKIE)
    return config.viewer(token)


def _viewer(config: AuthConfig) -> Response | None:
    try:
        viewer = request_viewer(config)
    except TokenError as exc:
        return unauthorized(exc.detail, exc.reason)
    g.viewer = viewer
    swarm = request.args.get("swarm")
    if request.endpoint in SWARM_QUERY_ENDPOINTS:
        swarm = swarm or ALL_SWARMS
    if swarm is not None and not viewer.may_see(swarm):
        if swarm == ALL_SWARMS:
            return forbidden("forbidden: every swarm (swarm=*) needs an all-swarms token; "
                             "ask for one of the token's swarms", swarm=swarm,
                             allowed=sorted(viewer.swarms or ()))
        return forbidden(f"forbidden: this token may not see swarm {swarm[:64]!r}",
                         swarm=swarm[:64])
    return None


def check_request() -> Response | None:
    config = auth_config()
    if config.disabled or request.method == "OPTIONS":  # preflights carry no credentials
        return None
    if request.endpoint == INGEST_ENDPOINT:
        return _agent(config)
    if not request.path.startswith(API_PREFIX) or request.endpoint is None:
        return None
    from flask import current_app

    view = current_app.view_functions.get(request.endpoint)
    if request.endpoint in PUBLIC_ENDPOINTS or getattr(view, "public", False):
        return None
    return _viewer(config)


def refuse_swarms(swarms: Iterable[str]) -> JsonResponse | None:
    """403 when the request's API key may not publish to one of ``swarms`` (call after
    validation, before storing: nothing of the batch is stored)."""
    key = g.get("api_key")
    if key is None:  # auth disabled
        return None
    denied = sorted({s for s in swarms if not key.allows(s)})
    if not denied:
        return None
    return forbidden(f"forbidden: API key {key.id!r} may not publish to swarm(s) "
                     f"{', '.join(denied)}; nothing was accepted", swarms=denied)


# --- sign-in --------------------------------------------------------------------------------

def secure_request() -> bool:
    """Did the client use TLS (to us, or to the proxy in front: X-Forwarded-Proto)?"""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.is_secure or forwarded == "https"


#: Where a request came from, as the browser says (Fetch Metadata): only the page's own
#: site may sign in or out.
_SAME_SITE_FETCH = ("", "same-origin", "none")


def _cross_site() -> JsonResponse | None:
    """403 for a sign-in or sign-out a browser sent from another site.

    A foreign ``Origin`` is refused before (see :mod:`swarmdash.cors`); a browser that sends
    none still says ``Sec-Fetch-Site``. Clients that are not browsers send neither."""
    site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if site in _SAME_SITE_FETCH:
        return None
    return forbidden(f"{request.path} must be sent by this site's own page "
                     f"(Sec-Fetch-Site: {site[:32]})")


def login_page() -> Response:
    """``GET /login``: the sign-in form. A token is never taken from the URL: a link could
    sign a victim's browser in as someone else, and URLs end up in logs and history (the
    form's script moves a token from an old ``?token=`` link or a ``#token=`` link into the
    form, to be sent with a click)."""
    response = Response(render_template("login.html"), mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    # The form's POST must carry the page's Origin (no-referrer would make it "null").
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def login() -> Response:
    """``POST /login`` (form field ``token``): check the token, keep it in an HttpOnly
    cookie, go to ``/``."""
    config = auth_config()
    refused = _cross_site()
    if refused is not None:
        return refused
    response: Response
    if config.disabled:
        response = redirect("/", code=303)
    else:
        token = request.form.get("token", "").strip()
        try:
            viewer = config.viewer(token)
        except TokenError as exc:
            response = unauthorized(exc.detail, exc.reason)
            response.headers["Cache-Control"] = "no-store"
            return response
        response = redirect("/", code=303)
        max_age = max(1, int((viewer.expires or time.time()) - time.time()))
        response.set_cookie(COOKIE, token, max_age=max_age, path="/",
                            httponly=True, samesite="Strict", secure=secure_request())
    response.headers["Cache-Control"] = "no-store"
    return response


def logout() -> Response:
    """``POST /logout``: forget the cookie (a GET from another site's link cannot)."""
    refused = _cross_site()
    if refused is not None:
        return refused
    response = redirect("/", code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict",
                           secure=secure_request())
    return response


# --- security headers -----------------------------------------------------------------------

def content_security_policy(host: str) -> str:
    sockets = f" ws://{host} wss://{host}" if host else ""
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"font-src 'self'; connect-src 'self'{sockets}; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'; object-src 'none'")


def security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")  # an old /login?token= must not leak
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", content_security_policy(request.host))
        headers.setdefault("X-Frame-Options", "DENY")
    return response


def install(app: Flask, config: AuthConfig) -> None:
    app.extensions[EXTENSION] = config
    app.before_request(check_request)
    app.after_request(security_headers)
    app.add_url_rule("/login", "login_page", login_page, methods=["GET"])
    app.add_url_rule("/login", "login", login, methods=["POST"])
    app.add_url_rule("/logout", "logout", logout, methods=["POST"])
    if config.disabled:
        log.warning("AUTH_DISABLED=true: anyone who reaches this node may publish and watch "
                    "every swarm (for the local demo only; see docs/security.md)")
    elif not config.keyring.keys:
        log.warning("API_KEYS is empty: every POST /api/v1/events is refused (401); "
                    "`swarmdash apikey` makes a key")
