"""The properties every answer to bad input must have, for in-process and live runs alike."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tests.fuzz.strategies import IngestRequest

#: Raw response: (status, parsed JSON body or None, Content-Type).
Answer = tuple[int, Any, str]


def check_error_body(answer: Answer) -> str:
    """A 4xx/5xx is JSON {"error": "<non-empty message>", ...}; returns the message."""
    status, body, content_type = answer
    assert content_type.startswith("application/json"), (status, content_type)
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    return str(body["error"])


def check_ingest(req: IngestRequest, answer: Answer, stored_since: Callable[[], list[Any]]
                 ) -> None:
    """The answer is the documented one, and the store holds all of the batch or none of it.

    ``stored_since()`` returns the events appended since just before the request.
    """
    status, body, _ = answer
    assert status < 500, (status, body)
    if status == 409 and req.expect == 202 and req.idempotency_key is not None:
        # the key was used before for another batch: refused whole, naming the key
        assert req.idempotency_key in check_error_body(answer), body
        assert stored_since() == [], "a batch refused for its Idempotency-Key was stored"
        return
    assert status == req.expect, (req.why, status, body)
    stored = stored_since()
    if status != 202:
        message = check_error_body(answer)
        assert stored == [], f"a refused request stored {len(stored)} event(s)"
        if req.why in ("Idempotency-Key", "MAX_PAYLOAD_BYTES", "invalid JSON", "no events",
                       "limit"):
            word = {"no events": "no events", "limit": "limit", "invalid JSON": "JSON"}.get(
                req.why, req.why)
            assert word in message or word in str(body), (req.why, body)
        if req.why == "invalid event":
            check_event_errors(req, body)
        return
    assert req.items is not None
    if body.get("duplicate"):  # a retry under a key already used: stored once, not again
        assert stored == []
        return
    assert body["accepted"] == len(req.items) == len(body["ids"]) == len(stored)
    assert [e["id"] for e in stored] == body["ids"] and body["cursor"] == body["ids"][-1]
    for item, event in zip(req.items, stored, strict=True):
        sent = item.raw
        for name in ("type", "swarm", "agent_id", "data"):
            assert event[name] == sent[name], (name, sent, event)
        if sent.get("ts") is not None:
            assert math.isclose(event["ts"], sent["ts"]), (sent["ts"], event["ts"])
        else:
            assert event["ts"] > 1_600_000_000  # filled in with the time of ingest


def check_event_errors(req: IngestRequest, body: dict[str, Any]) -> None:
    """Every problem is listed with its event's index and the field at fault."""
    assert req.items is not None
    errors = body.get("errors")
    assert isinstance(errors, list) and errors, body
    for entry in errors:
        assert isinstance(entry.get("error"), str) and entry["error"], entry
        assert isinstance(entry.get("field"), str), entry
    bad = {i for i, item in enumerate(req.items) if not item.valid}
    named = {e["index"] for e in errors}
    assert named <= bad, f"errors name valid events: {sorted(named - bad)}; {errors[:5]}"
    if len(errors) < 100:  # at most 100 entries are listed
        assert named == bad, f"events with problems not named: {sorted(bad - named)}"
    by_index: dict[int, set[str]] = {}
    for entry in errors:
        by_index.setdefault(entry["index"], set()).add(entry["field"])
    for index, item in enumerate(req.items):
        if not item.valid and item.check_field and index in by_index:
            assert item.field in by_index[index], (index, item.field, by_index[index])
