"""One process of the capacity scenario's ingest step: appends as fast as Redis answers.

    python -m bench.ingest_load --redis-url URL --batch N --duration S [--index I] [--keyed]

Each append is what one HTTP ingest request costs Redis: the event log's ``append_once``
(the ingest script, one call per batch of ``--batch`` validated events of the benchmark's
workload), with an ``Idempotency-Key`` per batch when ``--keyed`` (as the docs ask agents
to send). No pacing: the next batch goes as soon as the previous one is answered, so
several such processes keep several appends in flight, like the ingest requests of
several nodes. Prints ``{"started": ...}``, then, after ``--duration`` seconds or SIGTERM,
one JSON line with the batches and events appended.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import uuid
from typing import Any

from swarmdash.backends import open_event_log
from swarmdash.eventlog import BatchKey
from swarmdash.events import validate_batch
from swarmdash.settings import load_settings

from .workload import Generator, Workload

#: The events cycled through: the benchmark's medium mix (300 agents in 10 swarms).
POOL_WORKLOAD = Workload(agents=300, swarms=10)
POOL_SIZE = 6000


def pool(batch: int) -> list[list[dict[str, Any]]]:
    """Validated batches of ``batch`` events (the mix of the workload, in its order)."""
    events = Generator(POOL_WORKLOAD).due(POOL_SIZE / POOL_WORKLOAD.total_rate)
    limit = load_settings().max_event_bytes
    return [validate_batch(events[i:i + batch], max_events=batch, max_event_bytes=limit)
            for i in range(0, len(events) - batch + 1, batch)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--redis-url", required=True)
    p.add_argument("--batch", type=int, required=True, help="events per append (request)")
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--index", type=int, default=0, help="this process's number (key scope)")
    p.add_argument("--keyed", action="store_true", help="an Idempotency-Key per batch")
    args = p.parse_args(argv)
    if args.batch < 1:
        p.error("--batch must be at least 1")
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    batches = pool(args.batch)
    log = open_event_log(load_settings().replace(redis_url=args.redis_url))
    log.last_id()  # connected before the clock starts
    print(json.dumps({"started": time.time()}), flush=True)
    appended = events = 0
    end = time.monotonic() + args.duration
    while not stop and time.monotonic() < end:
        batch = batches[appended % len(batches)]
        key = (BatchKey(f"bench-{args.index}", uuid.uuid4().hex, uuid.uuid4().hex)
               if args.keyed else None)
        log.append_once(batch, key)
        appended += 1
        events += len(batch)
    log.close()
    print(json.dumps({"summary": {"batches": appended, "events": events}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
