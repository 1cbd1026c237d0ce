"""Viewer tokens: signed (HMAC-SHA1 over SECRET_KEY, via itsdangerous), expiring, scoped.

A token carries ``{"v": 1, "sub": name, "swarms": "*" | [names], "iat": t, "exp": t}``,
signed with ``SECRET_KEY``. Verification accepts a signature by ``SECRET_KEY`` or by any key
of ``SECRET_KEY_PREVIOUS`` (rotation: tokens issued before it keep working until they
expire, as long as the old key stays listed). The token is not encrypted: its name and
swarms are readable by whoever holds it; they cannot be changed without the key.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from ..events import valid_swarm_name

ALL_SWARMS = "*"
SALT = "swarmdash.viewer-token"
VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9_.@:+-]{1,64}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class TokenError(ValueError):
    """A token that cannot be used; ``reason`` is ``missing``, ``invalid`` or ``expired``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Viewer:
    """Who is watching and which swarms they may see (``swarms`` None: every swarm)."""

    name: str
    swarms: frozenset[str] | None
    expires: float | None = None  # None: never (AUTH_DISABLED)

    @property
    def all_swarms(self) -> bool:
        return self.swarms is None

    def may_see(self, swarm: str) -> bool:
        """``swarm`` is a swarm name, or ``*`` (every swarm: only with an all-swarms token)."""
        if self.swarms is None:
            return True
        return swarm != ALL_SWARMS and swarm in self.swarms

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (time.time() if now is None else now) >= self.expires

    def describe(self) -> dict[str, Any]:
        """What the viewer's page is told about itself."""
        return {"name": self.name,
                "swarms": ALL_SWARMS if self.swarms is None else sorted(self.swarms),
                "expires": self.expires}


ANONYMOUS = Viewer("anonymous", None)


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``8h``, ``7d``, ``2w`` -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30m, 8h or 7d")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _serializer(keys: Sequence[str]) -> URLSafeSerializer:
    # itsdangerous signs with the last key and verifies with any of them.
    return URLSafeSerializer(list(keys), salt=SALT)


def issue_token(secret_key: str, *, swarms: Iterable[str] | None, ttl: float,
                name: str = "viewer", now: float | None = None) -> str:
    """A token for ``name`` valid ``ttl`` seconds; ``swarms`` None: every swarm."""
    if not secret_key:
        raise ValueError("SECRET_KEY is empty: no token can be signed")
    if not _NAME.match(name):
        raise ValueError("name must be 1-64 characters of [A-Za-z0-9_.@:+-]")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    scope: str | list[str]
    if swarms is None:
        scope = ALL_SWARMS
    else:
        scope = sorted(set(swarms))
        if not scope:
            raise ValueError("give at least one swarm, or every swarm")
        bad = [s for s in scope if not valid_swarm_name(s)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a swarm name")
    issued = int(time.time() if now is None else now)
    payload = {"v": VERSION, "sub": name, "swarms": scope, "iat": issued,
               "exp": issued + max(1, round(ttl))}
    token: str = _serializer([secret_key]).dumps(payload)
    return token


def verify_token(token: str | None, keys: Sequence[str], *, now: float | None = None) -> Viewer:
    """The viewer a token names; :class:`TokenError` when missing, forged or expired.

    ``keys``: every key a valid token may be signed with (previous keys first, then the
    current one).
    """
    if not token:
        raise TokenError("missing", "no viewer token: sign in with the link from "
                                    "`swarmdash token`")
    usable = [k for k in keys if k]
    try:
        payload = _serializer(usable).loads(token)
    except BadSignature:
        raise TokenError("invalid", "the viewer token is not valid (tampered with, or signed "
                                    "with a key this node does not know)") from None
    except Exception:  # not even the shape of a token
        raise TokenError("invalid", "the viewer token is not valid") from None
    if not isinstance(payload, dict) or payload.get("v") != VERSION:
        raise TokenError("invalid", "the viewer token is not valid (unknown format)")
    name, scope, exp = payload.get("sub"), payload.get("swarms"), payload.get("exp")
    if (not isinstance(name, str) or not isinstance(exp, int)
            or not (scope == ALL_SWARMS or (isinstance(scope, list)
                                            and all(isinstance(s, str) for s in scope)))):
        raise TokenError("invalid", "the viewer token is not valid (bad fields)")
    current = time.time() if now is None else now
    if current >= exp:
        raise TokenError("expired", "the viewer token has expired: ask for a new one")
    swarms = None if scope == ALL_SWARMS else frozenset(scope)
    return Viewer(name, swarms, float(exp))
