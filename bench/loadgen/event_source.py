"""The agents' side of the load generator: the workload's events published by a process.

    python -m bench.loadgen.event_source \\
        --sink swarmdash|fsio --redis-url URL --workload JSON --duration S

``swarmdash`` appends each tick's events with the product's :class:`swarmdash.Publisher`
(one atomic append per tick, straight to the Redis event log, as agents do). ``fsio`` is
what a stock Flask-SocketIO deployment does: every event is emitted on its own through
the Redis message queue to the room of its swarm and the all-swarms room. It stops after
``--duration`` seconds or on SIGTERM and prints one JSON line: what it published, and how
far behind its schedule it fell.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from ..workload import Generator, Workload

Sink = Callable[[list[dict[str, Any]]], None]


def swarmdash_sink(redis_url: str) -> Sink:
    from swarmdash import Publisher

    publisher = Publisher(redis_url)
    limit = publisher.settings.max_events_per_request

    def send(events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), limit):
            publisher.publish(events[start:start + limit])
    return send


def fsio_sink(redis_url: str) -> Sink:
    import socketio

    manager = socketio.RedisManager(redis_url, channel="flask-socketio", write_only=True)

    def send(events: list[dict[str, Any]]) -> None:
        for event in events:
            name = "system_alert" if event["type"] == "alert" else f"{event['type']}_update"
            manager.emit(name, event, namespace="/",
                         room=[f"swarm:{event['swarm']}", "swarm:*"])
    return send


def run(sink: Sink, workload: Workload, duration: float) -> dict[str, Any]:
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    gen = Generator(workload)
    tick = workload.tick_ms / 1000
    start = last = time.monotonic()
    behind = 0.0
    print(json.dumps({"started": time.time()}), flush=True)
    while not stop and last - start < duration:
        time.sleep(max(0.0, last + tick - time.monotonic()))
        now = time.monotonic()
        behind = max(behind, now - last - tick)
        events = gen.due(now - last)
        last = now
        if events:
            sink(events)
    return {**gen.summary(), "duration": last - start, "max_behind_s": round(behind, 4)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sink", choices=("swarmdash", "fsio"), required=True)
    p.add_argument("--redis-url", required=True)
    p.add_argument("--workload", required=True, help="the Workload as JSON")
    p.add_argument("--duration", type=float, required=True)
    args = p.parse_args(argv)
    workload = Workload(**json.loads(args.workload))
    sink = swarmdash_sink(args.redis_url) if args.sink == "swarmdash" else fsio_sink(args.redis_url)
    print(json.dumps({"summary": run(sink, workload, args.duration)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
