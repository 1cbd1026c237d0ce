"""POST /api/v1/events with generated input, in-process on a real redis-server.

Every request gets the documented status (never a 5xx), a refused request stores nothing,
an accepted one stores every event as sent, and a 400 names each bad event and field.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from hypothesis import given

from swarmdash.node import node_of
from tests.fuzz.checks import check_ingest
from tests.fuzz.conftest import EXAMPLES, LIMITS, Credentials, fuzz
from tests.fuzz.strategies import IngestRequest, ingest_requests

MAX_EVENTS = int(LIMITS["MAX_EVENTS_PER_REQUEST"])
MAX_PAYLOAD = int(LIMITS["MAX_PAYLOAD_BYTES"])


@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # 300 kB bodies
def test_ingest_never_fails_and_never_applies_part_of_a_batch(redis_app: Flask) -> None:
    http = redis_app.test_client()
    log = node_of(redis_app).event_log
    seen = {"requests": 0, "accepted": 0}

    @fuzz(EXAMPLES)
    @given(req=ingest_requests(MAX_EVENTS, MAX_PAYLOAD))
    def run(req: IngestRequest) -> None:
        before = log.last_id()
        headers: dict[str, Any] = Credentials.ingest_headers(req.credential)
        if req.idempotency_key is not None:
            headers["Idempotency-Key"] = req.idempotency_key
        res = http.post("/api/v1/events", data=req.body, headers=headers,
                        content_type=req.content_type)
        answer = (res.status_code, res.get_json(silent=True), res.content_type or "")
        check_ingest(req, answer, lambda: log.read(before, MAX_EVENTS + 1))
        seen["requests"] += 1
        seen["accepted"] += res.status_code == 202

    run()
    # the run exercised both sides of the contract, not only refusals
    assert seen["requests"] >= EXAMPLES and seen["accepted"] > EXAMPLES // 20, seen
