"""JSON on the hot paths: Socket.IO packets and the events the relay reads back from Redis.

orjson encodes a room's batch and decodes a stored event several times faster than the
standard library (the measured figures are in docs/benchmarks.md, "Earlier changes"). Its
output is the same compact UTF-8 JSON. What orjson refuses (integers beyond 64 bits,
non-string keys, an invalid document such as a ``NaN`` literal) goes to the standard
library, so behaviour at the edges is unchanged. Ingest keeps the standard library: its
validation relies on ``allow_nan=False`` to refuse NaN and Infinity anywhere in an event.

The module has the ``dumps``/``loads`` pair python-socketio expects of its ``json`` option.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; stay correct without it
    orjson = None  # type: ignore[assignment]


def dumps(obj: Any, *_args: Any, **_kwargs: Any) -> str:
    """Compact JSON text (python-socketio passes ``separators``; the output is compact)."""
    if orjson is not None:
        try:
            return orjson.dumps(obj).decode()
        except TypeError:  # orjson.JSONEncodeError
            pass
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes, *_args: Any, **_kwargs: Any) -> Any:
    if orjson is not None:
        try:
            return orjson.loads(text)
        except ValueError:  # orjson.JSONDecodeError
            pass
    return json.loads(text)
