"""API keys of publishing agents.

A key is a random string (``sdk_`` + 43 URL-safe characters, 256 bits) that an agent sends
as ``Authorization: Bearer <key>``. Nodes never store the key itself: ``API_KEYS`` lists
entries ``<id>:<sha256 hex of the key>:<swarms>``, where ``<swarms>`` is ``*`` (every swarm)
or swarm names joined by ``|``; entries are separated by commas or whitespace. Several
entries may be configured at once, which is how a key is rotated (add the new one, move the
agents over, remove the old one).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from ..events import valid_swarm_name

KEY_PREFIX = "sdk_"
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
ANY_SWARM = "*"


def key_hash(key: str) -> str:
    """The SHA-256 hex digest an ``API_KEYS`` entry stores for ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    id: str
    digest: bytes  # SHA-256 of the key
    swarms: frozenset[str] | None  # None: every swarm

    def allows(self, swarm: str) -> bool:
        return self.swarms is None or swarm in self.swarms

    @property
    def entry(self) -> str:
        scope = ANY_SWARM if self.swarms is None else "|".join(sorted(self.swarms))
        return f"{self.id}:{self.digest.hex()}:{scope}"


def parse_api_key_entry(entry: str) -> ApiKey:
    """One ``id:sha256hex:swarms`` entry; :class:`ValueError` says what is wrong with it."""
    parts = entry.strip().split(":", 2)
    if len(parts) != 3:
        raise ValueError(f"{entry[:80]!r} is not an entry like id:<sha256 hex>:swarm1|swarm2 "
                         "(or :* for every swarm)")
    key_id, digest, scope = parts
    if not _KEY_ID.match(key_id):
        raise ValueError(f"key id {key_id[:80]!r} must be 1-64 characters of [A-Za-z0-9_.-]")
    if not _HEX.match(digest.lower()):
        raise ValueError(f"key {key_id!r}: the hash must be 64 hex digits (SHA-256 of the key; "
                         "`swarmdash apikey` prints an entry)")
    if scope == ANY_SWARM:
        swarms = None
    else:
        names = scope.split("|")
        bad = [n for n in names if not valid_swarm_name(n)]
        if bad:
            raise ValueError(f"key {key_id!r}: {bad[0][:80]!r} is not a swarm name (or use *)")
        swarms = frozenset(names)
    return ApiKey(key_id, bytes.fromhex(digest.lower()), swarms)


def split_entries(raw: str) -> tuple[str, ...]:
    return tuple(e for e in re.split(r"[,\s]+", raw) if e)


def parse_api_keys(entries: Iterable[str]) -> tuple[ApiKey, ...]:
    keys = tuple(parse_api_key_entry(e) for e in entries)
    ids = [k.id for k in keys]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"key id(s) {', '.join(dup)} listed more than once")
    return keys


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyRing:
    """The configured keys; :meth:`authenticate` finds the one a presented key hashes to."""

    def __init__(self, keys: Iterable[ApiKey]):
        self.keys = tuple(keys)

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> KeyRing:
        return cls(parse_api_keys(entries))

    def authenticate(self, presented: str) -> ApiKey | None:
        """The key ``presented`` is, or None. Every configured hash is compared, each in
        constant time, so the answer's timing tells nothing about which hash came close."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found


class AuthError(PermissionError):
    """A publish refused for its API key: ``status`` 401 (unknown/missing) or 403 (swarm)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
