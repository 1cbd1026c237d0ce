"""A steady stream of numbered events through the proxy's HTTP ingest, retried as the
protocol says: a batch refused with 503 or lost to a connection error is posted again,
with the same Idempotency-Key, until it is accepted (202), and only then does the next one
of its swarm go out. So the events of a swarm are stored in the order of their numbers,
each exactly once, and ``accepted[swarm]`` is the highest number the API confirmed.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

#: Most events a publisher sends in one request while it catches up after an outage.
CATCH_UP_BATCH = 100
#: Seconds after which a publisher that cannot deliver a batch gives up (the test fails).
DELIVERY_DEADLINE = 180.0


def numbered_event(swarm: str, seq: int) -> dict[str, Any]:
    """Event ``seq`` of ``swarm``: every 25th an alert, else metrics and logs alternating
    (three channels, each with its own batch window, so cursors have per-channel parts)."""
    agent = f"agent-{seq % 7}"
    if seq % 25 == 0:
        return {"type": "alert", "swarm": swarm, "agent_id": agent,
                "data": {"severity": "info", "message": f"event {seq}", "seq": seq}}
    if seq % 2:
        return {"type": "metric", "swarm": swarm, "agent_id": agent,
                "data": {"name": "seq", "value": seq, "seq": seq}}
    return {"type": "log", "swarm": swarm, "agent_id": agent,
            "data": {"level": "info", "message": f"event {seq}", "seq": seq}}


@dataclass
class Tally:
    """What the API answered, counted in events (a refused request refuses its batch)."""

    accepted: Counter[str] = field(default_factory=Counter)  # swarm -> events confirmed
    batches: int = 0             # requests answered 202
    duplicates: int = 0          # retries answered "duplicate": true (stored by an earlier try)
    refused_503: int = 0         # events in 503 answers
    refused_503_node: int = 0    # ... of which a node's JSON answer (the event store was away)
    no_retry_after: int = 0      # 502/503/504 answers without Retry-After
    refused_other: Counter[str] = field(default_factory=Counter)  # "conn", "502", ... -> events
    unexpected: list[str] = field(default_factory=list)  # any other answer: a contract breach
    undelivered: int = 0         # batches given up after DELIVERY_DEADLINE

    @property
    def total_accepted(self) -> int:
        return sum(self.accepted.values())


class IngestFeed:
    def __init__(self, url: str, swarms: list[str], rate: float, batch: int):
        self.url = f"{url}/api/v1/events"
        self.swarms = swarms
        self.per_swarm = rate / len(swarms)  # events per second of each swarm
        self.batch = batch
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(s,), daemon=True,
                                          name=f"publish-{s}") for s in swarms]

    def start(self) -> IngestFeed:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """No new events; the batch in flight of each swarm is delivered first."""
        self._stop.set()
        for t in self._threads:
            t.join(DELIVERY_DEADLINE + 30)

    def accepted(self) -> dict[str, int]:
        with self._lock:
            return dict(self.tally.accepted)

    def _run(self, swarm: str) -> None:
        session = requests.Session()
        started = time.monotonic()
        seq = 0
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * self.per_swarm)
            if due - seq < self.batch:
                self._stop.wait(self.batch / self.per_swarm / 4)
                continue
            count = min(due - seq, CATCH_UP_BATCH)
            events = [numbered_event(swarm, n) for n in range(seq + 1, seq + count + 1)]
            if not self._deliver(session, events):
                return
            seq += count
            with self._lock:
                self.tally.accepted[swarm] = seq

    def _deliver(self, session: requests.Session, events: list[dict[str, Any]]) -> bool:
        body = json.dumps(events)
        headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
        deadline = time.monotonic() + DELIVERY_DEADLINE
        n = len(events)
        t = self.tally
        while time.monotonic() < deadline:
            pause = 0.2
            try:
                r = session.post(self.url, data=body, headers=headers, timeout=15)
            except requests.RequestException as exc:
                with self._lock:
                    t.refused_other["timeout" if isinstance(exc, requests.Timeout)
                                    else "conn"] += n
                time.sleep(pause)
                continue
            with self._lock:
                if r.status_code == 202:
                    answer = r.json()
                    if len(answer.get("ids", ())) != n:
                        t.unexpected.append(f"202 with {answer}")
                    t.duplicates += bool(answer.get("duplicate"))
                    t.batches += 1
                    return True
                if r.status_code == 503:
                    retry_after = r.headers.get("Retry-After")
                    t.refused_503 += n
                    t.refused_503_node += n if "X-Swarmdash-Node" in r.headers else 0
                    t.no_retry_after += 0 if retry_after else 1
                    pause = min(float(retry_after or pause), 1.0)
                elif r.status_code in (502, 504):
                    t.refused_other[str(r.status_code)] += n
                    t.no_retry_after += 0 if r.headers.get("Retry-After") else 1
                else:
                    t.unexpected.append(f"{r.status_code}: {r.text[:200]}")
            time.sleep(pause)
        with self._lock:
            t.undelivered += 1
        return False
