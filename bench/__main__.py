"""``python -m bench [--quick | --size medium | --size full] [--out DIR] [--write-docs]``

Runs every system of the comparison on this machine, one after the other, prints the
table and writes it with the plots and the raw results into the output directory
(``bench/out`` by default). See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import idle, procstat, report
from .npm import npm_ci
from .run import Options, Run, haproxy_maxconn
from .sizes import SIZES
from .systems import (
    ALL,
    BENCH,
    NO_DEFLATE,
    NODE_BATCHED,
    NODE_BATCHED_DEFLATE,
    POLLING,
    SWARMDASH,
    before,
)

#: Systems that run the connection-scale step: SwarmDash and its before column, the batched
#: Node.js peer, and the two compressed the other way (the peer with permessage-deflate,
#: SwarmDash without), so the step shows what compression costs at that scale.
SCALE_SYSTEMS = (SWARMDASH.key, "swarmdash-before", NODE_BATCHED.key, NODE_BATCHED_DEFLATE.key,
                 NO_DEFLATE.key)

#: Open files the benchmark needs: every client is a socket in the load generator, two in
#: HAProxy and one in a node; the children inherit the limit.
NOFILE = 200_000


def raise_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, max(hard, NOFILE)))
    except (ValueError, OSError):  # not allowed to raise the hard limit: take what there is
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Bar:
    """A progress bar on stderr (one line per change when stderr is not a terminal)."""

    def __init__(self, total: float):
        self.total = total
        self.tty = sys.stderr.isatty()
        self.last = ""
        self.start = time.monotonic()

    def __call__(self, what: str, done: float) -> None:
        frac = min(1.0, done / self.total) if self.total else 1.0
        width = 30
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        line = f"[{bar}] {frac * 100:3.0f}% {time.monotonic() - self.start:5.0f}s {what}"
        if self.tty:
            sys.stderr.write("\r" + line[:120].ljust(120))
            sys.stderr.flush()
        elif what != self.last:
            print(line, file=sys.stderr, flush=True)
        self.last = what

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the CI smoke size (under 2 minutes)")
    p.add_argument("--size", choices=sorted(SIZES), default=None, help="quick, medium or full")
    p.add_argument("--out", type=Path, default=BENCH / "out", help="output directory")
    p.add_argument("--systems", default="", help="comma-separated subset of: "
                   + ", ".join(s.key for s in ALL))
    p.add_argument("--pin-loadgen", default=None, metavar="CPUS",
                   help="taskset CPU list for the load generator processes, e.g. 1")
    p.add_argument("--write-docs", action="store_true",
                   help="regenerate docs/benchmarks.md from this run")
    p.add_argument("--before", type=Path, default=None, metavar="DIR",
                   help="another checkout of SwarmDash, run as the 'before' column")
    p.add_argument("--idle", type=int, default=None, metavar="N",
                   help="clients of the idle step (default: the size's; 0 skips it)")
    p.add_argument("--scale", type=int, default=None, metavar="N",
                   help="clients of the connection-scale step (default: the size's; 0 skips)")
    p.add_argument("--results", type=Path, default=None, metavar="FILE",
                   help="run nothing: print (and with --write-docs, write) the table of a "
                        "saved results.json")
    args = p.parse_args(argv)
    if args.results:
        saved = json.loads(args.results.read_text())
        return publish(saved["meta"], saved["results"], args.out.resolve(), args.write_docs)
    size = SIZES["quick" if args.quick else (args.size or "full")]
    candidates = [*ALL] + ([before(args.before)] if args.before else [])
    keys = [k for k in args.systems.split(",") if k] or [s.key for s in candidates]
    if args.before and "swarmdash-before" not in keys:  # asked for by --before itself
        keys.append("swarmdash-before")
    unknown = set(keys) - {s.key for s in candidates}
    if unknown:
        p.error(f"unknown system(s): {', '.join(sorted(unknown))}")
    systems = [s for s in candidates if s.key in keys]
    idle_n = size.idle_clients if args.idle is None else args.idle
    scale_n = size.scale_clients if args.scale is None else args.scale

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    nofile = raise_nofile()
    npm_ci()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"size": size.name, "date": time.strftime("%Y-%m-%d %H:%M %Z"),
                            "machine": procstat.machine(), "versions": report.versions(),
                            "nofile": nofile, "loadgen_cpus": args.pin_loadgen,
                            "haproxy_maxconn": haproxy_maxconn(max(size.steps)),
                            "workload": size.workload.to_dict(),
                            "rates": size.workload.rates(), "steps": list(size.steps),
                            "reference": size.reference, "measure_s": size.measure_s,
                            "loadgen_processes": size.loadgen_processes,
                            "sources": size.sources, "all_every": size.all_every,
                            "idle_clients": idle_n, "idle_rate": size.idle_rate,
                            "scale_clients": scale_n}
    socket_systems = [s for s in systems if s is not POLLING]
    run = Run(Options(size, out, args.pin_loadgen), lambda w, d: None)
    want_polling = POLLING in systems
    if want_polling and SWARMDASH not in socket_systems:
        socket_systems.insert(0, SWARMDASH)  # polling runs on SwarmDash's own cluster
    bar = Bar(sum(run.units(s) for s in socket_systems))
    run.progress = bar
    results: dict[str, Any] = {}
    started = time.monotonic()
    try:
        for system in socket_systems:
            r = run.system(system, with_polling=want_polling and system is SWARMDASH)
            if "polling" in r:
                results[POLLING.key] = {"system": POLLING.key, "title": POLLING.title,
                                        **r.pop("polling")}
            if idle_n and system.kind in ("swarmdash", "node"):
                bar(f"{system.key}: idle step, {idle_n} clients", run.done)
                r["idle_step"] = idle.idle(run, system, idle_n, size.idle_rate, size.settle_s)
            if scale_n and system.key in SCALE_SYSTEMS:
                bar(f"{system.key}: connection scale, {scale_n} clients", run.done)
                r["scale_step"] = idle.scale(run, system, scale_n, size.connect_rate * 2,
                                             size.settle_s, size.measure_s)
            results[system.key] = r
    except KeyboardInterrupt:
        bar.close()
        print("interrupted: every process of the run was stopped", file=sys.stderr)
        return 130
    bar.close()
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    return publish(meta, results, out, args.write_docs)


def publish(meta: dict[str, Any], results: dict[str, Any], out: Path, write_docs: bool) -> int:
    """Print the table of a run, keep it with its plots in ``out``, and with ``write_docs``
    regenerate docs/benchmarks.md from it."""
    out.mkdir(parents=True, exist_ok=True)
    table = report.table(meta, results)
    (out / "table.md").write_text(table)
    plots = report.plots(meta, results, out)
    print(table)
    print(f"\nresults, table and plots in {out}", file=sys.stderr)
    if write_docs:
        docs = BENCH.parent / "docs"
        images = docs / "benchmarks"
        images.mkdir(exist_ok=True)
        for plot in plots:
            shutil.copy(plot, images / plot.name)
        links = [f"benchmarks/{p.name}" for p in plots]
        (docs / "benchmarks.md").write_text(report.document(meta, results, table, links))
        print(f"wrote {docs / 'benchmarks.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
