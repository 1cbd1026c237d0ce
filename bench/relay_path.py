"""``python -m bench.relay_path``: a node's CPU per event read, on the relay's own path.

The part of a node's work that every node does for every event, whatever its clients: take
the events of one read of the stream, offer each to the rooms of its swarm and of ``*``,
flush the batches that are due, encode and frame each emission once and hand the frame to
every member. Here it runs in one process, without Redis, the network or gevent: the
medium workload (300 agents, 10 swarms, 1,210 events/s) as 50 ms reads, flush ticks every
20 ms in between, on a simulated clock; 11 rooms (each swarm, and ``*``) with ``--members``
members each, which agreed to shared deflate as browsers do and whose sockets only count
the bytes. The figure is the process's CPU time per
event read (``time.process_time``), which other work on the machine moves less than wall
time, but still moves on a busy machine. ``--instructions`` adds the instructions per event
read, counted by valgrind's callgrind, which are the same from one run to the next: two
runs that prepare the same workload and process all of it, then half of it; the
difference over the difference in events read leaves out start-up and preparation.
``--before DIR`` runs another checkout the same way, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

READ_S = 0.05   # one read of the stream per publisher tick
TICK_S = 0.02   # the flush loop's tick (FLUSH_TICK_MS)
START = 1_800_000_000.0


class _CountingSocket:
    """What an outbox writes to: takes everything, counts the bytes."""

    def __init__(self) -> None:
        self.bytes = 0

    def send(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)

    def sendmsg(self, buffers: list[bytes]) -> int:
        n = sum(len(b) for b in buffers)
        self.bytes += n
        return n


class _Holder:
    """The attributes the outbox and the fan-out look up (``_sock``, ``outbox``)."""

    def __init__(self, **attrs: Any):
        self.__dict__.update(attrs)


def measure(members: int, seconds: float, process: float | None = None) -> dict[str, float]:
    """Run the relay's path in this process and return its figures: ``seconds`` of
    workload prepared, the first ``process`` seconds of it (all by default) processed."""
    import socketio

    from swarmdash import codec, wsframes
    from swarmdash.cursor import KEYS
    from swarmdash.eventlog.memory import MemoryEventLog
    from swarmdash.events import CHANNELS
    from swarmdash.relay import Relay
    from swarmdash.settings import load_settings
    from swarmdash.subscription import Subscription
    from swarmdash.wsconn import Outbox, corked

    from .workload import Generator, Workload

    clock = [START]
    server = socketio.Server(json=codec, async_mode="threading")
    relay = Relay(load_settings({}, env_file=None), MemoryEventLog(), server,
                  lambda _s: None, lambda *_a, **_k: None, clock=lambda: clock[0])
    relay.position = (0, 0)
    sockets: list[_CountingSocket] = []
    # members that agreed to shared deflate, as browsers and the Node.js client do
    style = getattr(wsframes, "STREAM", 15)
    swarms = [f"swarm-{i}" for i in range(1, 11)] + ["*"]
    for swarm in swarms:
        sub = Subscription(swarm, frozenset(CHANNELS))
        for _ in range(members):
            eio_sid = f"eio-{len(sockets)}"
            sid = server.manager.connect(eio_sid, "/")
            raw = _CountingSocket()
            sockets.append(raw)
            outbox = Outbox(_Holder(_sock=raw), style, lambda *_a: None, lambda _m: b"")
            server.eio.sockets[eio_sid] = _Holder(outbox=outbox)
            room = relay.rooms.get(sub.room)
            relay._join(sid, sub, room, [], dict.fromkeys(KEYS, (0, 0)))
    generator = Generator(Workload(agents=300, swarms=10))
    reads: list[list[dict[str, Any]]] = []
    for k in range(int(seconds / READ_S)):
        ms = int(START * 1000) + k * int(READ_S * 1000)
        events = [codec.loads(codec.dumps(e)) for e in generator.due(READ_S)]
        for i, event in enumerate(events):
            event["id"] = f"{ms}-{i}"
        reads.append(events)
    ticks = [TICK_S * (i + 1) for i in range(int(READ_S / TICK_S))]
    reschedule = getattr(relay, "_reschedule", None)
    if process is not None:
        reads = reads[:int(process / READ_S)]
    started = time.process_time()
    for k, events in enumerate(reads):
        clock[0] = START + k * READ_S
        with corked():
            relay._process(events)
            if reschedule is not None:  # the flush loop's next wake-up (absent before)
                reschedule()
        for offset in ticks:
            clock[0] = START + k * READ_S + offset
            with corked():
                for room in list(relay.rooms.values()):
                    for channel in room.due(clock[0]):
                        relay._emit(room, room.flush(channel, relay.position, clock[0]),
                                    clock[0])
    cpu = time.process_time() - started
    read = sum(len(r) for r in reads)
    sent = sum(s.bytes for s in sockets)
    return {"events read": read, "members": len(sockets), "cpu_us_per_event": cpu / read * 1e6,
            "bytes_per_event_member": sent / read / len(sockets)}


def _argv(members: int, seconds: float, process: float | None = None) -> list[str]:
    argv = [sys.executable, "-m", "bench.relay_path", "--members", str(members),
            "--seconds", str(seconds), "--json"]
    return argv + (["--process", str(process)] if process is not None else [])


def _env(source: Path | None) -> tuple[dict[str, str], Path]:
    root = Path(__file__).resolve().parent.parent
    services = (source.resolve() if source else root) / "services"
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(services), str(root)])}, root


def run_in(source: Path | None, members: int, seconds: float) -> dict[str, float]:
    """``measure`` in a fresh interpreter, on this checkout's code or ``source``'s."""
    env, root = _env(source)
    out = subprocess.run(_argv(members, seconds), env=env, cwd=root, capture_output=True,
                         text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _counted(source: Path | None, members: int, seconds: float,
             process: float) -> tuple[int, float]:
    """(instructions of the whole interpreter run, events read), under callgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind on the PATH (apt-get install valgrind)")
    env, root = _env(source)
    out = subprocess.run([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          *_argv(members, seconds, process)], env=env, cwd=root,
                         capture_output=True, text=True, check=True)
    found = re.search(r"Collected\s*:\s*(\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count: {out.stderr[-400:]}")
    return int(found.group(1)), json.loads(out.stdout.strip().splitlines()[-1])["events read"]


def instructions_per_event(source: Path | None, members: int, seconds: float) -> float:
    """Instructions per event read: the same workload prepared twice, processed whole and
    half; start-up and preparation cancel out in the difference."""
    whole, n_whole = _counted(source, members, seconds, seconds)
    half, n_half = _counted(source, members, seconds, seconds / 2)
    return (whole - half) / (n_whole - n_half)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.relay_path", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=8, help="members of each of the 11 rooms")
    p.add_argument("--seconds", type=float, default=20.0, help="of simulated workload")
    p.add_argument("--repeat", type=int, default=3, help="runs per column; the best is kept")
    p.add_argument("--before", type=Path, default=None, metavar="DIR")
    p.add_argument("--instructions", type=float, default=0.0, metavar="SECONDS",
                   help="also count instructions per event read with callgrind, over this "
                        "many seconds of workload (4 is enough; valgrind is slow)")
    p.add_argument("--process", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--write-docs", action="store_true",
                   help="keep the table for docs/benchmarks.md (docs/benchmarks/relay_path.md)")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one run, as JSON
    args = p.parse_args(argv)
    if args.json:
        print(json.dumps(measure(args.members, args.seconds, args.process)))
        return 0
    columns: dict[str, Path | None] = {"SwarmDash": None}
    if args.before:
        columns["SwarmDash before"] = args.before
    results = {}
    for title, source in columns.items():
        runs = [run_in(source, args.members, args.seconds) for _ in range(args.repeat)]
        results[title] = min(runs, key=lambda r: r["cpu_us_per_event"])
        if args.instructions:
            results[title]["instructions"] = instructions_per_event(
                source, args.members, args.instructions)
    first = next(iter(results.values()))
    lines = [f"Relay path: {first['events read']:,.0f} events read, 11 rooms, "
             f"{first['members']:,.0f} members; best of {args.repeat}", "",
             "| figure | " + " | ".join(results) + " |", "|---|" + "---|" * len(results),
             "| CPU per event read, µs | " + " | ".join(
                 f"{r['cpu_us_per_event']:.1f}" for r in results.values()) + " |",
             "| bytes written per event read and member | " + " | ".join(
                 f"{r['bytes_per_event_member']:.1f}" for r in results.values()) + " |"]
    if args.instructions:
        lines.insert(-1, f"| instructions per event read (callgrind, {args.instructions:g} s "
                         "of workload) | " + " | ".join(
                             f"{r['instructions']:,.0f}" for r in results.values()) + " |")
    table = "\n".join(lines) + "\n"
    print(table, end="")
    if args.write_docs:
        (Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "relay_path.md"
         ).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
