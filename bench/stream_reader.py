"""A stand-in for one node's relay in the capacity scenario: reads the whole stream.

    python -m bench.stream_reader --redis-url URL

It does what the relay's read loop does, without the rooms: ``XREAD BLOCK`` with
RELAY_READ_COUNT and RELAY_BLOCK_MS from the last id it read (through the event log, so
the entries are decoded as the relay decodes them), and records for every event the lag
``now - data.sent``. Prints ``{"ready": ...}`` once connected and positioned at the
stream's head. On SIGTERM it reads on up to the stream's last id at that moment (every
event published before the stop), then prints one JSON line: events received, the
receive rate between the first and the last, lag p50/p99/max in ms, and its own CPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import sys
import time
from typing import Any

from swarmdash.backends import open_event_log
from swarmdash.cursor import StreamId
from swarmdash.settings import load_settings


def percentile(samples: list[float], q: float) -> float | None:
    """The q-th percentile of sorted ``samples`` (None when empty)."""
    if not samples:
        return None
    return round(samples[min(len(samples) - 1, int(q / 100 * len(samples)))], 3)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--redis-url", required=True)
    args = p.parse_args(argv)
    settings = load_settings().replace(redis_url=args.redis_url)
    stopping = False

    def on_term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    log = open_event_log(settings)
    position: StreamId = log.last_id()
    print(json.dumps({"ready": time.time()}), flush=True)
    cpu0 = cpu_seconds()
    lags: list[float] = []
    received = 0
    first = last = 0.0
    stop_at: StreamId | None = None
    while True:
        if stopping and stop_at is None:
            stop_at = log.last_id()
        if stop_at is not None and position >= stop_at:
            break
        events = log.read(position, settings.relay_read_count, settings.relay_block_ms)
        if not events:
            continue
        now = time.time()
        first = first or now
        last = now
        for event in events:
            sent = event.get("data", {}).get("sent")
            if isinstance(sent, int | float):
                lags.append(now * 1000 - sent)
        received += len(events)
        ms, _, seq = events[-1]["id"].partition("-")
        position = (int(ms), int(seq))
    lags.sort()
    out: dict[str, Any] = {
        "received": received, "cpu_s": round(cpu_seconds() - cpu0, 3),
        "rate": round((received - 1) / (last - first), 1) if last > first else None,
        "lag_p50": percentile(lags, 50), "lag_p99": percentile(lags, 99),
        "lag_max": round(lags[-1], 3) if lags else None}
    print(json.dumps({"summary": out}), flush=True)
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
