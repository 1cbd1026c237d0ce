"""The latency the Redis hop adds: publish (``data.sent``) to a blocked reader of the stream.

An observer reading the event log exactly as a node's relay does (blocking ``XREAD`` from
its last id) records ``now - data.sent`` for every event, for ``--duration`` seconds, and
prints one JSON line with p50/p99/max in ms. Run as its own process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from swarmdash.backends import open_event_log
from swarmdash.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--redis-url", required=True)
    p.add_argument("--duration", type=float, required=True)
    args = p.parse_args(argv)
    log = open_event_log(load_settings().replace(redis_url=args.redis_url))
    position = log.last_id()
    samples: list[float] = []
    end = time.monotonic() + args.duration
    while time.monotonic() < end:
        events = log.read(position, 1000, 200)
        now = time.time() * 1000
        for event in events:
            sent = event.get("data", {}).get("sent")
            if isinstance(sent, int | float):
                samples.append(now - sent)
        if events:
            ms, _, seq = events[-1]["id"].partition("-")
            position = (int(ms), int(seq))
    samples.sort()

    def pct(q: float) -> float | None:
        return round(samples[min(len(samples) - 1, int(q / 100 * len(samples)))], 3) \
            if samples else None
    print(json.dumps({"n": len(samples), "p50": pct(50), "p99": pct(99),
                      "max": round(samples[-1], 3) if samples else None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
