"""``python -m bench.profile``: where a node's time goes, as py-spy samples it.

One node (gunicorn, gevent) with ``--clients`` official-client websockets subscribed to
every swarm, the medium workload published into Redis, and ``py-spy record`` on the node's
worker for ``--seconds`` at 50 Hz. The busy samples are sorted into the parts of the
delivery path by the functions on their stacks; the table gives each part's share of the
busy samples. ``--before DIR`` profiles another checkout the same way, side by side.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import procstat
from .idle import node_url
from .loadgen import LoadGen
from .npm import npm_ci
from .run import Options, Publisher, Run, viewer_token
from .sizes import SIZES
from .systems import BENCH, SWARMDASH, BenchCluster, System, before

RATE_HZ = 100
#: (part, substrings of a frame that put a sample in it). A sample belongs to the part of
#: the innermost frame that matches one; samples that match none are "the rest".
PARTS: list[tuple[str, tuple[str, ...]]] = [
    # zlib's own time shows as the Python frame that calls it: a room stream's frame()
    ("permessage-deflate", ("deflate", "compress", "RoomStream.frame")),
    ("socket writes", ("sendall", "sendmsg", "send (", "wsconn.py", "wsframes.py:")),
    ("Engine.IO queue and writer", ("engineio/socket.py", "gevent/queue", "queue.py")),
    ("wsproto and frame building", ("wsproto", "text_frame")),
    ("orjson and JSON", ("codec.py", "json")),
    ("relay: room batches and fan-out", ("relay.py", "batching.py", "fanout.py")),
    ("reading the stream from Redis", ("eventlog/", "redis/", "hiredis")),
    ("Socket.IO/Engine.IO packets and handlers", ("socketio/", "engineio/")),
]
REST = "the rest (HTTP, gevent hub, metrics)"


def classify(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for part, needles in PARTS:
            if any(n in frame for n in needles):
                return part
    return REST


def profile(system: System, out: Path, clients: int, seconds: float,
            all_every: int = 1) -> dict[str, float]:
    run = Run(Options(SIZES["medium"], out), lambda w, d: None)
    workdir = out / f"profile-{system.key}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    cluster = BenchCluster(workdir, system, nodes=1, maxconn=clients * 2 + 100)
    lg = publisher = None
    try:
        cluster.up()
        token = viewer_token(cluster)
        lg = LoadGen(2, 50, workdir)
        lg.connect(clients, node_url(cluster), swarms=10, all_every=all_every, rate=500,
                   auth={"token": token} if token else None)
        publisher = Publisher(system, cluster, run.size, seconds + 60, workdir)
        time.sleep(3)
        master = cluster.role_pids()["nodes"][0]
        worker = next(p for p in procstat.tree([master]) if p != master)
        raw = workdir / "pyspy.txt"
        lg.reset()
        cpu_before, t_before = procstat.cpu_seconds([worker]), time.monotonic()
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        spy = subprocess.run([py_spy, "record", "-p", str(worker), "-d", str(int(seconds)), "-r",
                              str(RATE_HZ), "--format", "raw", "-o", str(raw), "--nonblocking"],
                             capture_output=True, text=True)
        if spy.returncode != 0:
            raise RuntimeError(f"py-spy failed: {spy.stderr.strip()[-400:]}")
        delivered = lg.report().counters.get("events", 0)
        cpu = procstat.cpu_seconds([worker]) - cpu_before
        window = time.monotonic() - t_before
    finally:
        if publisher is not None:
            publisher.stop()
        if lg is not None:
            lg.close()
        cluster.down()
    shares: dict[str, float] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        part = classify(stack)
        shares[part] = shares.get(part, 0) + n
    result = {part: 100 * n / total for part, n in shares.items()} if total else {}
    result["busy %"] = 100 * total / (seconds * RATE_HZ)
    result["worker CPU, % of a core"] = 100 * cpu / window
    result["delivered events/s"] = delivered / seconds
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    p.add_argument("--clients", type=int, default=500)
    p.add_argument("--seconds", type=int, default=15)
    p.add_argument("--all-every", type=int, default=1, metavar="N",
                   help="every N-th client subscribes to every swarm, the others to one "
                        "(1: all of them; the benchmark's ramp uses 20)")
    p.add_argument("--before", type=Path, default=None, metavar="DIR")
    p.add_argument("--out", type=Path, default=BENCH / "out")
    p.add_argument("--write-docs", action="store_true",
                   help="keep the table for docs/benchmarks.md (docs/benchmarks/profile.md)")
    args = p.parse_args(argv)
    npm_ci()
    systems = [SWARMDASH] + ([before(args.before)] if args.before else [])
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {s.title: profile(s, args.out, args.clients, args.seconds,
                                     args.all_every) for s in systems}
    rows = ["busy %", "worker CPU, % of a core", "delivered events/s",
            *(part for part, _ in PARTS), REST]
    lines = ["| share of the worker's busy samples | " + " | ".join(results) + " |",
             "|---|" + "---|" * len(results)]
    for row in rows:
        cells = [f"{r.get(row, 0):,.0f}" if row == "delivered events/s"
                 else f"{r.get(row, 0):.0f}%" for r in results.values()]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    (args.out / "profile.md").write_text(table)
    if args.write_docs:
        (BENCH.parent / "docs" / "benchmarks" / "profile.md").write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
