"""The authentication settings a node works with, parsed once at start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .apikeys import KeyRing
from .tokens import ANONYMOUS, TokenError, Viewer, verify_token

if TYPE_CHECKING:
    from ..settings import Settings

#: The cookie that carries a viewer token for the page, the polling API and Socket.IO.
COOKIE = "swarmdash_token"


@dataclass(frozen=True)
class AuthConfig:
    disabled: bool
    keyring: KeyRing
    token_keys: tuple[str, ...]  # previous keys first, the current one last

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthConfig:
        return cls(disabled=settings.auth_disabled,
                   keyring=KeyRing.from_entries(settings.api_keys),
                   token_keys=(*settings.secret_key_previous, settings.secret_key))

    def viewer(self, token: str | None) -> Viewer:
        """The viewer ``token`` names (anyone when auth is off); :class:`TokenError`."""
        if self.disabled:
            return ANONYMOUS
        return verify_token(token, self.token_keys)


def bearer(header: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header."""
    if not header:
        return None
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


__all__ = ["COOKIE", "AuthConfig", "TokenError", "bearer"]
