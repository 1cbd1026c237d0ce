"""Which ``Host`` names a node answers: the defence against DNS rebinding.

A page on ``http://evil.example:8050`` whose name is made to resolve to 127.0.0.1 reaches
a node listening there as its own origin: the browser sends ``Host: evil.example:8050``
and ``Origin: http://evil.example:8050``, which the origin check takes for the node's own
site. A node that answers only its own names closes that door.

``ALLOWED_HOSTS`` lists the names (``*``: any; ``.example.com``: the name and its
subdomains). Left empty, a node with auth off (the local demo) answers only names that
cannot be rebound: IP addresses, ``localhost`` (and ``*.localhost``), this machine's host
name and the host of ``NODE_ADDRESS``; a node with auth on answers any name (a rebinding
page holds no token of the site it pretends to be). A request without ``Host`` (HTTP/1.0
health checks) is not from a browser and passes. Checked in front of everything, Socket.IO
included; a refusal is 400 with a JSON error.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Iterable
from typing import Any

from .settings import Settings

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def host_name(host: str) -> str:
    """The name part of a ``Host`` header (no port, no IPv6 brackets), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    """``allows(name)``: may a request with this ``Host`` name be answered?"""

    def __init__(self, names: Iterable[str] | None, *, ip_literals: bool = False):
        self.any = names is None or "*" in names
        self.exact = {n.lower() for n in names or () if not n.startswith(".")}
        self.suffixes = tuple(n.lower() for n in names or () if n.startswith("."))
        self.ip_literals = ip_literals

    @classmethod
    def from_settings(cls, s: Settings) -> HostPolicy:
        if s.allowed_hosts:
            return cls(s.allowed_hosts)
        if not s.auth_disabled:
            return cls(None)
        names = {"localhost", ".localhost", socket.gethostname(),
                 host_name(s.advertised_address), host_name(s.host)}
        return cls(names, ip_literals=True)

    def allows(self, name: str) -> bool:
        if self.any or name in self.exact or (self.ip_literals and _is_ip(name)):
            return True
        return any(name.endswith(s) or name == s[1:] for s in self.suffixes)


def guard(app: WSGIApp, policy: HostPolicy) -> WSGIApp:
    """``app`` behind the ``Host`` check (wrap the outermost WSGI app: Socket.IO too)."""
    if policy.any:
        return app

    def checked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST")
        if not host or policy.allows(host_name(host)):
            return app(environ, start_response)
        body = json.dumps({"error": f"host {host[:100]!r} is not allowed on this node "
                                    "(ALLOWED_HOSTS)"}).encode()
        start_response("400 Bad Request", [("Content-Type", "application/json"),
                                           ("Content-Length", str(len(body)))])
        return [body]

    return checked
