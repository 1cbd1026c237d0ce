"""Who may do what: agents publish with API keys, viewers watch with signed tokens.

* :mod:`.apikeys`: API keys of publishing agents (``API_KEYS``, stored as SHA-256 hashes).
* :mod:`.tokens`: viewer tokens, signed with ``SECRET_KEY`` (``SECRET_KEY_PREVIOUS`` for
  rotation), listing the swarms a viewer may see.
* :mod:`.origins`: the origin policy (``CORS_ALLOWED_ORIGINS``) of the API and Socket.IO.
* :mod:`.web`: the HTTP side (request checks, ``/login``, security headers).
* :mod:`.socket`: the Socket.IO side (``connect`` and ``subscribe`` checks).

docs/security.md describes the model; ``AUTH_DISABLED=true`` switches the checks off
(the local demo only).
"""

from .apikeys import ApiKey, AuthError, KeyRing, generate_key, parse_api_key_entry
from .tokens import ALL_SWARMS, TokenError, Viewer, issue_token, verify_token

__all__ = ["ALL_SWARMS", "ApiKey", "AuthError", "KeyRing", "TokenError", "Viewer", "generate_key",
           "issue_token", "parse_api_key_entry", "verify_token"]
