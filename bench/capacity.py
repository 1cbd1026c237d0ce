"""``python -m bench.capacity [--size ci|full] [--repeat N] [--out DIR] [--write-docs]
[--results FILE]``

How much one Redis takes, measured on this machine (see docs/scaling.md):

1. **Ingest**: processes append batches through the event log's ingest script as fast as
   Redis answers (``bench.ingest_load``), for a few batch sizes; the events/s it accepted
   and its main thread's CPU-seconds per 1,000 events (``INFO cpu``: Redis runs its
   commands on one thread, so one CPU-second per second is its ceiling).
2. **Readers**: 1, 3, 10, 30 processes read the whole stream as nodes' relays do
   (``bench.stream_reader``) while the benchmark's publisher ingests at a fixed rate, in
   appends every 50 ms (as the benchmark) and every 1 ms (one or a few events each, as
   agents posting each event); the events/s each received, their lag, Redis's CPU and its
   egress (``INFO stats``).

Every step runs against a fresh redis-server of its own on a free port, configured as the
local cluster's (AOF, ``appendfsync everysec``). It prints the table (and the capacity model
derived from it) and writes them with the raw results into the output directory.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import redis

from swarmdash.cluster.processes import wait_until
from swarmdash.cluster.redis import redis_binary, server_conf
from swarmdash.keys import Keys
from swarmdash.settings import load_settings

from . import capacity_report, procstat
from .report import versions
from .systems import BENCH, REPO
from .workload import Workload


@dataclass(frozen=True)
class IngestStep:
    batch: int       # events per append (one HTTP request)
    keyed: bool      # an Idempotency-Key per batch


@dataclass(frozen=True)
class ReaderStep:
    readers: int     # processes reading the whole stream
    tick_ms: int     # the publisher appends what is due every tick: 50 ms as the benchmark,
                     # 1 ms for appends of one or a few events (agents posting each one)


@dataclass(frozen=True)
class CapacitySize:
    name: str
    ingest: tuple[IngestStep, ...]
    ingest_processes: int
    readers: tuple[ReaderStep, ...]
    workload: Workload          # what the publisher ingests during the reader steps
    warm_s: float
    measure_s: float


SIZES = {
    "ci": CapacitySize("ci", (IngestStep(1, True), IngestStep(50, True)), ingest_processes=2,
                       readers=(ReaderStep(1, 50), ReaderStep(3, 50), ReaderStep(2, 1)),
                       workload=Workload(agents=50, swarms=5),
                       warm_s=0.5, measure_s=1.5),
    "full": CapacitySize("full", (IngestStep(1, False), IngestStep(1, True),
                                  IngestStep(50, True), IngestStep(500, True)),
                         ingest_processes=3,
                         readers=(*(ReaderStep(k, 50) for k in (1, 3, 10, 30)),
                                  *(ReaderStep(k, 1) for k in (1, 10, 30))),
                         workload=Workload(agents=300, swarms=10), warm_s=2.0, measure_s=8.0),
}


class LocalRedis:
    """A redis-server of the step's own, on a free port, with the local cluster's config."""

    def __init__(self, workdir: Path):
        self.dir = workdir / "redis"
        shutil.rmtree(self.dir, ignore_errors=True)  # an earlier run's AOF would be loaded
        self.dir.mkdir(parents=True)
        port = free_port()
        conf = self.dir / "redis.conf"
        conf.write_text(server_conf(port, self.dir))
        self.log = open(self.dir / "redis.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([redis_binary(), str(conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"redis://127.0.0.1:{port}/0"
        self.client = redis.Redis.from_url(self.url, decode_responses=True)
        wait_until(self.client.ping, 10, f"redis-server on port {port}")

    def sample(self, stream: str) -> dict[str, float]:
        """Redis's CPU-seconds (all threads, and its main thread: the one that runs the
        commands), bytes in and out, and entries ever added to the stream."""
        stats: Any = self.client.info("stats")
        cpu: Any = self.client.info("cpu")
        try:
            added = int(self.client.xinfo_stream(stream)["entries-added"])
        except redis.ResponseError:  # no stream yet
            added = 0
        return {"t": time.monotonic(),
                "cpu": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
                "main": (float(cpu["used_cpu_user_main_thread"])
                         + float(cpu["used_cpu_sys_main_thread"])),
                "out": float(stats["total_net_output_bytes"]),
                "in": float(stats["total_net_input_bytes"]), "added": float(added)}

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child:
    """A bench process whose first line says it is running and whose last is a summary."""

    def __init__(self, argv: list[str], log: Path):
        self.err = open(log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", *argv], stdout=subprocess.PIPE,
                                     stderr=self.err, text=True, cwd=REPO,
                                     start_new_session=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first.startswith("{"):
            self.finish(terminate=True)
            raise RuntimeError(f"{argv[0]} did not start: {first!r} (see {log})")

    def finish(self, terminate: bool, timeout: float = 60) -> dict[str, Any]:
        if terminate and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.err.close()
        for line in reversed(out.splitlines()):
            if line.startswith('{"summary"'):
                summary: dict[str, Any] = json.loads(line)["summary"]
                return summary
        raise RuntimeError(f"{self.proc.args!r} ended without a summary")


def window(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: b[k] - a[k] for k in a}


class Scenario:
    def __init__(self, size: CapacitySize, out: Path):
        self.size = size
        self.out = out
        self.stream = Keys(load_settings().redis_key_prefix).stream

    def _measured(self, server: LocalRedis, pids: list[int]) -> dict[str, float]:
        time.sleep(self.size.warm_s)  # the measurement window's start, not a synchronisation
        a = server.sample(self.stream)
        c0 = procstat.cpu_seconds(pids)
        time.sleep(self.size.measure_s)
        d = window(a, server.sample(self.stream))
        d["clients_cpu"] = procstat.cpu_seconds(pids) - c0
        return d

    def ingest(self, step: IngestStep, run: int) -> dict[str, Any]:
        name = f"ingest-b{step.batch}{'-keyed' if step.keyed else ''}"
        workdir = self.out / f"run{run}" / name
        server = LocalRedis(workdir)
        children: list[Child] = []
        try:
            duration = self.size.warm_s + self.size.measure_s + 5
            for i in range(self.size.ingest_processes):
                argv = ["bench.ingest_load", "--redis-url", server.url, "--batch",
                        str(step.batch), "--duration", str(duration), "--index", str(i)]
                children.append(Child(argv + (["--keyed"] if step.keyed else []),
                                      workdir / f"ingest{i}.log"))
            d = self._measured(server, [c.proc.pid for c in children])
            for child in children:
                child.finish(terminate=True)
            children.clear()
        finally:
            for child in children:
                child.finish(terminate=True)
            server.stop()
        return {"batch": step.batch, "keyed": step.keyed,
                "processes": self.size.ingest_processes, **capacity_report.ingest_figures(d)}

    def readers(self, step: ReaderStep, run: int) -> dict[str, Any]:
        k = step.readers
        workdir = self.out / f"run{run}" / f"readers-{k}-tick{step.tick_ms}"
        server = LocalRedis(workdir)
        readers: list[Child] = []
        publisher: Child | None = None
        try:
            readers = [Child(["bench.stream_reader", "--redis-url", server.url],
                             workdir / f"reader{i}.log") for i in range(k)]
            w = json.dumps(replace(self.size.workload, tick_ms=step.tick_ms).to_dict())
            duration = self.size.warm_s + self.size.measure_s
            publisher = Child(["bench.loadgen.event_source", "--sink", "swarmdash",
                               "--redis-url", server.url, "--workload", w,
                               "--duration", str(duration)],
                              workdir / "publisher.log")
            d = self._measured(server, [r.proc.pid for r in readers])
            published = publisher.finish(terminate=False, timeout=duration + 60)
            publisher = None
            added = int(server.sample(self.stream)["added"])
            got = [r.finish(terminate=True) for r in readers]
            readers = []
        finally:
            if publisher is not None:
                publisher.finish(terminate=True)
            for r in readers:
                r.finish(terminate=True)
            server.stop()
        return {"readers": k, "tick_ms": step.tick_ms,
                "published": published.get("published", 0), "stream": added,
                **capacity_report.reader_figures(d, k, got, added)}


def run_all(size: CapacitySize, out: Path, repeat: int) -> dict[str, Any]:
    scenario = Scenario(size, out)
    runs = []
    for i in range(1, repeat + 1):
        started = time.monotonic()
        load = procstat.machine()["load_before"]
        r: dict[str, Any] = {"load_before": load, "date": time.strftime("%Y-%m-%d %H:%M %Z")}
        r["ingest"] = []
        for step in size.ingest:
            print(f"run {i}: ingest, batches of {step.batch}", file=sys.stderr, flush=True)
            r["ingest"].append(scenario.ingest(step, i))
        r["readers"] = []
        for rs in size.readers:
            print(f"run {i}: {rs.readers} reader(s), appends every {rs.tick_ms} ms",
                  file=sys.stderr, flush=True)
            r["readers"].append(scenario.readers(rs, i))
        r["elapsed_s"] = round(time.monotonic() - started, 1)
        runs.append(r)
    settings = load_settings()
    meta = {"size": size.name, "machine": procstat.machine(), "versions": versions(),
            "sizes": asdict(size), "rate": size.workload.total_rate,
            "relay_read_count": settings.relay_read_count,
            "relay_block_ms": settings.relay_block_ms, "stream_maxlen": settings.stream_maxlen}
    return {"meta": meta, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="full", help="ci or full")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run every step N times, one column per run")
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default: a temporary one, removed)")
    p.add_argument("--write-docs", action="store_true",
                   help="regenerate docs/scaling.md from this run")
    p.add_argument("--results", type=Path, default=None, metavar="FILE",
                   help="no run: the table and model of a results.json written before")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    with tempfile.TemporaryDirectory(prefix="swarmdash-capacity-") as tmp:
        out = (args.out or Path(tmp)).resolve()
        out.mkdir(parents=True, exist_ok=True)
        if args.results is not None:
            results = json.loads(args.results.read_text())
        else:
            try:
                results = run_all(SIZES[args.size], out, args.repeat)
            except KeyboardInterrupt:
                print("interrupted: every process of the run was stopped", file=sys.stderr)
                return 130
        (out / "results.json").write_text(json.dumps(results, indent=1))
        table = capacity_report.table(results)
        model = capacity_report.model(results)
        (out / "table.md").write_text(table + "\n" + model)
        print(table)
        print(model)
        if args.write_docs:
            path = BENCH.parent / "docs" / "scaling.md"
            path.write_text(capacity_report.document(results, table, model))
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
