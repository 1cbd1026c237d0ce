"""The event model and its validation: one place for every ingest path.

An event is ``{"type", "swarm", "agent_id", "ts", "data"}``; the stream assigns its ``id``.
Validation is strict (unknown fields are refused) and a batch is all-or-nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]

EVENT_TYPES = ("agent", "task", "metric", "log", "alert")
AGENT_STATUSES = ("idle", "busy", "processing", "waiting", "error", "offline")
CRITICAL_STATUSES = ("error", "offline")
TASK_STATUSES = ("queued", "running", "completed", "failed")
TASK_FINISHED = ("completed", "failed")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
SEVERITIES = ("info", "warning", "error", "critical")

#: Batched channels a client subscribes to, and the Socket.IO event of each.
CHANNELS = ("agent", "task", "metric", "log")
BATCH_EVENTS = {c: f"{c}_update_batch" for c in CHANNELS}
#: Immediate events, sent to every subscriber of the swarm whatever its channels.
ALERT = "alert"
SYSTEM_ALERT = "system_alert"
AGENT_CRITICAL = "agent_critical_update"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_AGENT_ID = re.compile(r"^[A-Za-z0-9_.:@/-]{1,128}$")
_TOP_LEVEL = ("type", "swarm", "agent_id", "ts", "data")
MAX_TEXT = 8192


class ValidationError(ValueError):
    """Carries one ``{"index", "field", "error"}`` entry per problem found."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        first = errors[0] if errors else {"field": "?", "error": "invalid"}
        super().__init__(f"{first.get('field')}: {first.get('error')}")


_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: Integers an event may carry: signed 64-bit (what every JSON codec on the path keeps
#: exact; JavaScript clients see integers beyond 2**53 rounded in any case).
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1
_LONG_DIGITS = re.compile(r"\d{19,}")  # an integer this long may be out of range


def _out_of_range_int(value: Any, path: str) -> str | None:
    """The path of the first integer outside INT_MIN..INT_MAX in ``value``, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return path if not INT_MIN <= value <= INT_MAX else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _out_of_range_int(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _out_of_range_int(item, f"{path}[{i}]")
            if found:
                return found
    return None


def valid_idempotency_key(key: Any) -> bool:
    return isinstance(key, str) and bool(_IDEMPOTENCY_KEY.fullmatch(key))


def batch_digest(body: Any) -> str:
    """A digest of a batch as sent (before defaults are filled in): a retry of the same
    batch has the same digest, whatever its key order or whitespace."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def valid_swarm_name(name: Any) -> bool:
    return isinstance(name, str) and bool(_NAME.fullmatch(name))


def valid_agent_id(agent_id: Any) -> bool:
    return isinstance(agent_id, str) and bool(_AGENT_ID.fullmatch(agent_id))


def _number(value: Any) -> bool:
    try:
        return (isinstance(value, int | float) and not isinstance(value, bool)
                and math.isfinite(value))
    except OverflowError:  # an integer beyond any double, e.g. 1e400 written out
        return False


def _text(value: Any, limit: int = MAX_TEXT, empty: bool = False) -> bool:
    return isinstance(value, str) and (empty or bool(value)) and len(value) <= limit


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"
    return check


def _required_text(limit: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if _text(value, limit) else f"must be a non-empty string of <= {limit} chars"
    return check


def _finite(value: Any) -> str | None:
    return None if _number(value) else "must be a finite number"


#: data fields each type requires, and their check.
_REQUIRED: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "agent": {"status": _one_of(AGENT_STATUSES)},
    "task": {"task_id": _required_text(128), "status": _one_of(TASK_STATUSES)},
    "metric": {"name": _required_text(128), "value": _finite},
    "log": {"level": _one_of(LOG_LEVELS), "message": _required_text(MAX_TEXT)},
    "alert": {"severity": _one_of(SEVERITIES), "message": _required_text(MAX_TEXT)},
}


def _check_one(raw: Any, now: float, max_bytes: int) -> tuple[Event | None, list[dict[str, str]]]:
    if not isinstance(raw, dict):
        return None, [{"field": "", "error": "an event must be a JSON object"}]
    errors: list[dict[str, str]] = []

    def bad(field: str, error: str) -> None:
        errors.append({"field": field, "error": error})

    for key in raw:
        if key not in _TOP_LEVEL:
            bad(str(key)[:64], "unknown field (allowed: " + ", ".join(_TOP_LEVEL) + ")")
    kind = raw.get("type")
    if kind not in EVENT_TYPES:
        bad("type", f"must be one of {', '.join(EVENT_TYPES)}")
    if not valid_swarm_name(raw.get("swarm")):
        bad("swarm", "must match [A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
    if not valid_agent_id(raw.get("agent_id")):
        bad("agent_id", "must match [A-Za-z0-9_.:@/-]{1,128}")
    ts = raw.get("ts", now)
    if ts is None:
        ts = now
    if not _number(ts) or ts <= 0:
        bad("ts", "must be a positive number of epoch seconds")
    data = raw.get("data")
    if not isinstance(data, dict):
        bad("data", "must be a JSON object")
    elif kind in EVENT_TYPES:  # a tuple: an unhashable "type" (list, object) cannot break it
        for name, check in _REQUIRED[kind].items():
            problem = check(data.get(name))
            if problem:
                bad(f"data.{name}", problem)
        if kind == "metric" and "unit" in data and not _text(data["unit"], 32, empty=True):
            bad("data.unit", "must be a string of <= 32 chars")
    if errors:
        return None, errors
    event: Event = {"type": kind, "swarm": raw["swarm"], "agent_id": raw["agent_id"],
                    "ts": ts, "data": data}
    try:
        text = encode(event)
        size = len(text.encode())  # bytes, as stored; a lone surrogate cannot be
    except (TypeError, ValueError) as exc:  # (UnicodeEncodeError is a ValueError)
        return None, [{"field": "data", "error": f"not encodable as JSON: {exc}"}]
    if _LONG_DIGITS.search(text):
        where = _out_of_range_int(data, "data")
        if where:
            return None, [{"field": where, "error": "integers must fit in 64 bits "
                                                   f"({INT_MIN} to {INT_MAX})"}]
    if size > max_bytes:
        return None, [{"field": "", "error": f"event is {size} bytes, limit {max_bytes}"}]
    return event, []


def validate_batch(raw: Any, *, max_events: int, max_event_bytes: int,
                   now: float | None = None) -> list[Event]:
    """Validate one event or a list of events; raise :class:`ValidationError` listing all errors.

    Returns the normalised events (``ts`` filled in). Nothing is returned unless every event
    is valid, so callers cannot apply half a batch.
    """
    now = time.time() if now is None else now
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise ValidationError([{"index": None, "field": "", "error": "no events given"}])
    if len(items) > max_events:
        raise ValidationError([{"index": None, "field": "",
                                "error": f"{len(items)} events, limit {max_events}"}])
    events: list[Event] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        event, problems = _check_one(item, now, max_event_bytes)
        if event is None:
            errors.extend({"index": index, **p} for p in problems)
        else:
            events.append(event)
    if errors:
        raise ValidationError(errors)
    return events


def encode(obj: Any) -> str:
    """Compact JSON, refusing NaN/Infinity (browsers cannot parse them)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def is_critical(event: Event) -> bool:
    return event["type"] == "agent" and event["data"].get("status") in CRITICAL_STATUSES


def position_of(event: Event, channels: frozenset[str]) -> str:
    """Which position of a subscription with ``channels`` this event advances.

    Batched types map to their channel; alerts, and critical agent updates of a
    subscription without the agent channel, map to the always-present ``alert`` key.
    """
    kind = event["type"]
    if kind == ALERT:
        return ALERT
    if kind == "agent" and is_critical(event) and "agent" not in channels:
        return ALERT
    return kind


def wanted(event: Event, channels: frozenset[str]) -> bool:
    """Does a subscription with ``channels`` receive ``event``?"""
    return event["type"] in channels or event["type"] == ALERT or is_critical(event)
