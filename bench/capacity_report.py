"""The capacity scenario's figures, its table, and the model extrapolated from them.

The model rests on CPU-seconds per unit of work rather than on the throughput a run
reached: Redis runs its commands on one thread, so one CPU-second per second is its
ceiling, and CPU per event stays put when other processes share the cores, while the
events/s a contended run reaches does not.
"""

from __future__ import annotations

from statistics import median
from typing import Any

from .docs_text import PARTS

#: Node counts the model is worked out for.
NODES = (10, 100, 1000)
#: The benchmark's workloads (bench/sizes.py): medium and full, events/s published.
WORKLOADS = {"medium (300 agents)": 1210.0, "full (1,000 agents)": 4010.0}
#: A network interface of 10 Gbit/s, in bytes per second.
NIC_BYTES_S = 10e9 / 8
#: What a node costs per delivered event, from docs/benchmarks.md (medium run of
#: 2026-11-30 19:20 UTC, reference step): nodes' CPU-s per million delivered events, and the
#: events/s the 250 dashboards received; and the fan-out profile (one node, 500 dashboards
#: on every swarm): delivered events/s at the worker's CPU share (from /proc).
NODE_CPU_S_PER_MILLION = 4.97
BENCH_DELIVERED_S, BENCH_DASHBOARDS = 43817.0, 250
PROFILE_DELIVERED_S, PROFILE_CPU = 623168.0, 0.10
#: The benchmark's target (docs/benchmarks.md): dashboards one deployment holds.
TARGET_DASHBOARDS = 10_000
#: The share of its core Redis is planned to use at most (room for snapshots, resumes,
#: bursts and the failover catch-up).
REDIS_TARGET = 0.5
#: The share of a core a node is planned to use (headroom for bursts and reconnects).
NODE_TARGET = 0.7


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def ingest_figures(d: dict[str, float]) -> dict[str, Any]:
    t, cpu, main, added = d["t"], d["cpu"], d["main"], d["added"]
    return {"events_s": _div(added, t), "redis_cpu_share": _div(cpu, t),
            "redis_main_share": _div(main, t),
            "redis_ms_per_1000": _div(main * 1e6, added),
            "redis_all_ms_per_1000": _div(cpu * 1e6, added),
            "ceiling_events_s": _div(added, main), "in_bytes_per_event": _div(d["in"], added),
            "clients_cpu_share": _div(d["clients_cpu"], t)}


def reader_figures(d: dict[str, float], k: int, got: list[dict[str, Any]],
                   stream: int) -> dict[str, Any]:
    t, cpu, main, added = d["t"], d["cpu"], d["main"], d["added"]
    rates = [g["rate"] for g in got if g.get("rate")]
    received = [int(g["received"]) for g in got]
    return {
        "events_s": _div(added, t), "redis_cpu_share": _div(cpu, t),
        "redis_main_share": _div(main, t),
        "redis_ms_per_1000": _div(main * 1e6, added),
        "redis_ms_per_1000_delivered": _div(main * 1e6, added * k),
        "egress_bytes_s": _div(d["out"], t),
        "egress_per_delivered": _div(d["out"], added * k),
        "delivered_s_min": min(rates) if rates else None,
        "delivered_s_median": median(rates) if rates else None,
        "received_min": min(received), "received_max": max(received),
        "all_received": len(got) == k and min(received) == stream > 0,
        "lag_p50": median(g["lag_p50"] for g in got if g["lag_p50"] is not None)
        if any(g["lag_p50"] is not None for g in got) else None,
        "lag_p99": max((g["lag_p99"] for g in got if g["lag_p99"] is not None), default=None),
        "lag_max": max((g["lag_max"] for g in got if g["lag_max"] is not None), default=None),
        "reader_ms_per_1000": _div(sum(g["cpu_s"] for g in got) * 1e6, sum(received)),
        "readers_cpu_share": _div(d["clients_cpu"], t)}


# --- the table ------------------------------------------------------------------------------

def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


INGEST_ROWS: tuple[tuple[str, str, float], ...] = (
    ("events/s accepted", "events_s", 1),
    ("Redis CPU, all threads, % of a core", "redis_cpu_share", 100),
    ("Redis main thread, % of a core", "redis_main_share", 100),
    ("Redis main thread per 1,000 events, ms", "redis_ms_per_1000", 1),
    ("Redis, all threads, per 1,000 events, ms", "redis_all_ms_per_1000", 1),
    ("ceiling: events per main-thread CPU-second", "ceiling_events_s", 1),
    ("bytes into Redis per event", "in_bytes_per_event", 1),
    ("the publishing processes' CPU, % of a core", "clients_cpu_share", 100),
)
READER_ROWS: tuple[tuple[str, str, float], ...] = (
    ("events/s ingested", "events_s", 1),
    ("delivered events/s per reader (slowest)", "delivered_s_min", 1),
    ("every reader received every event", "all_received", 1),
    ("reader lag p50 (publish -> read), ms", "lag_p50", 1),
    ("reader lag p99 (worst reader), ms", "lag_p99", 1),
    ("Redis CPU, all threads, % of a core", "redis_cpu_share", 100),
    ("Redis main thread, % of a core", "redis_main_share", 100),
    ("Redis main thread per 1,000 events ingested, ms", "redis_ms_per_1000", 1),
    ("the same per 1,000 events delivered to a reader, ms", "redis_ms_per_1000_delivered", 1),
    ("Redis egress, MB/s", "egress_bytes_s", 1e-6),
    ("Redis egress per delivered event, bytes", "egress_per_delivered", 1),
    ("readers' CPU per 1,000 events read, ms (a relay's read cost)", "reader_ms_per_1000", 1),
    ("readers' CPU, % of a core (all readers)", "readers_cpu_share", 100),
)


def _row(label: str, cells: list[Any], scale: float) -> str:
    shown = [fmt(c * scale if isinstance(c, float) else c) for c in cells]
    return f"| {label} | " + " | ".join(shown) + " |"


def table(results: dict[str, Any]) -> str:
    runs = results["runs"]
    head = "| | " + " | ".join(f"run {i + 1} ({r['date']})" for i, r in enumerate(runs)) + " |"
    rule = "|---|" + "---|" * len(runs)
    lines = ["**Ingest**: appends through the ingest script, as fast as Redis answers "
             f"({runs[0]['ingest'][0]['processes']} processes, no pacing).", "", head, rule]
    for i, step in enumerate(runs[0]["ingest"]):
        name = f"batches of {step['batch']}" + (", Idempotency-Key" if step["keyed"] else "")
        lines.append(f"| **{name}** |" + " |" * len(runs))
        for label, key, scale in INGEST_ROWS:
            lines.append(_row(label, [r["ingest"][i][key] for r in runs], scale))
    meta = results["meta"]
    lines += ["", f"**Readers**: the benchmark's publisher at {meta['rate']:,.0f} events/s; "
              f"each reader an `XREAD BLOCK {meta['relay_block_ms']} COUNT "
              f"{meta['relay_read_count']}` loop from its last id, as a relay.", "", head, rule]
    for i, step in enumerate(runs[0]["readers"]):
        how = ("appends of one or a few events every 1 ms" if step.get("tick_ms") == 1
               else f"one append every {step.get('tick_ms', 50)} ms")
        lines.append(f"| **{step['readers']} reader(s), {how}** |" + " |" * len(runs))
        for label, key, scale in READER_ROWS:
            lines.append(_row(label, [r["readers"][i][key] for r in runs], scale))
    return "\n".join(lines) + "\n"


# --- the model ------------------------------------------------------------------------------

def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares ``y = a + b x``; returns (a, b)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - b * mx, b


def _series(run: dict[str, Any], tick_ms: int) -> list[dict[str, Any]]:
    return [s for s in run["readers"]
            if s.get("tick_ms", 50) == tick_ms and s["redis_ms_per_1000"] is not None]


def parameters(run: dict[str, Any]) -> dict[str, float]:
    """A run's unit costs: Redis CPU-s per event ingested (a) and per reader (b), egress bytes
    per event per reader, a reader's CPU per event, for the benchmark's appends (every
    50 ms) and, with suffix 1, for appends of one or a few events (every 1 ms); ingest CPU per
    event by batch size."""
    out: dict[str, float] = {}
    for tick, suffix in ((50, ""), (1, "1")):
        steps = _series(run, tick)
        if len({s["readers"] for s in steps}) < 2:
            continue
        a, b = fit([(s["readers"], s["redis_ms_per_1000"] / 1e6) for s in steps])
        _, e = fit([(s["readers"], s["egress_per_delivered"] * s["readers"]) for s in steps])
        out |= {f"a{suffix}": a, f"b{suffix}": b, f"egress{suffix}": e,
                f"reader{suffix}": median(s["reader_ms_per_1000"] / 1e6 for s in steps)}
    for step in run["ingest"]:
        key = f"ingest_{step['batch']}" + ("k" if step["keyed"] else "")
        out[key] = step["redis_ms_per_1000"] / 1e6
    return out


def conservative(results: dict[str, Any]) -> dict[str, float]:
    """Of every run's parameters, the costliest: the model errs towards less capacity."""
    runs = [parameters(r) for r in results["runs"]]
    return {k: max(p[k] for p in runs if k in p) for k in runs[0]}


def node_cost() -> dict[str, float]:
    """Node CPU per dashboard at the benchmark's medium workload (docs/benchmarks.md)."""
    per_dashboard = BENCH_DELIVERED_S / BENCH_DASHBOARDS
    high = per_dashboard * 1000 * NODE_CPU_S_PER_MILLION / 1e6
    low = per_dashboard * 1000 * PROFILE_CPU / PROFILE_DELIVERED_S
    return {"per_dashboard": per_dashboard, "high": high, "low": low,
            "dashboards_per_node": 1000 * NODE_TARGET / high}


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.3g} µs"


def regimes(p: dict[str, float]) -> dict[str, tuple[float, float]]:
    """(append, per-reader) Redis CPU-s per event: the benchmark's batched appends, and every
    event its own request with an Idempotency-Key (readers then woken per append)."""
    single = p.get("ingest_1k", p.get("ingest_1", p["a"]))
    # The 1 ms series fits its per-reader cost less well (readers that fall behind read more
    # per call, which lowers it): the larger of the two is used.
    return {"batched": (p["a"], p["b"]),
            "one event per request": (single, max(p["b"], p.get("b1", 0.0)))}


def model(results: dict[str, Any]) -> str:
    p = conservative(results)
    nc = node_cost()
    a, b, e = p["a"], p["b"], p["egress"]
    if a <= 0 or b <= 0 or e <= 0 or p.get("b1", 1) <= 0:
        return ("### Unit costs\n\nThe reader steps of this run do not separate the append's "
                f"cost from the readers' (a = {us(a)}, b = {us(b)} per reader): too short or "
                "too few steps for the model; run the full size.\n")
    ways = regimes(p)
    single, b1 = ways["one event per request"]
    reader1 = p.get("reader1", p["reader"])
    lines = [
        "### Unit costs",
        "",
        "Redis's main-thread CPU per event ingested is fitted, over the reader steps, as "
        "`a + b x readers`: a is the append, b one reader's share of the XREADs.",
        "",
        f"- Appends every 50 ms (the benchmark's publisher): **a = {us(a)}, b = {us(b)} per "
        f"reader**; egress **{e:,.0f} bytes per event per reader**; a reader's own CPU (what "
        f"a relay spends reading and decoding the stream, before any room) "
        f"**{us(p['reader'])} per event**.",
    ]
    if "b1" in p:
        lines.append(
            f"- Appends of one or a few events every 1 ms (agents posting each event): "
            f"a = {us(p['a1'])}, **b = {us(p['b1'])} per reader** (each XREAD now carries one or "
            f"a few events); a reader's own CPU {us(p['reader1'])} per event.")
    lines += [
        "- The ingest steps, Redis per event appended: "
        + "; ".join(f"batches of {k.removeprefix('ingest_').removesuffix('k')}"
                    f"{' with an Idempotency-Key' if k.endswith('k') else ''}: **{us(v)}**"
                    for k, v in p.items() if k.startswith("ingest_")) + ".",
        "",
        "Of every run, the costlier figure is used. Two ways of ingesting bound the model: "
        f"*batched* (a, b above) and *one event per request* (each event its own HTTP request "
        f"with an Idempotency-Key: {us(single)} to append, {us(b1)} per reader, the larger "
        "of the two fits of b: Redis's share of a read is mostly per entry sent, and readers "
        "that fall behind read more per call, which makes the 1 ms fit the noisier).",
        "",
        "Node CPU per 1,000 dashboards at the benchmark's medium workload (1,210 events/s, "
        "every 20th dashboard on all swarms): the medium benchmark run of 2026-11-30 19:20 UTC, "
        "on a machine as fast as the capacity runs' (docs/benchmarks.md now shows a later run on "
        "a slower one), delivered "
        f"{BENCH_DELIVERED_S:,.0f} events/s to {BENCH_DASHBOARDS} dashboards = "
        f"{nc['per_dashboard']:.0f} events/s per dashboard, at {NODE_CPU_S_PER_MILLION} "
        f"CPU-s of the nodes per million delivered: 1,000 x {nc['per_dashboard']:.0f} x "
        f"{NODE_CPU_S_PER_MILLION} µs = **{nc['high']:.2f} cores per 1,000 dashboards**. The "
        f"fan-out profile (one node, 500 dashboards on every swarm, {PROFILE_DELIVERED_S:,.0f}"
        f" events/s at {PROFILE_CPU:.0%} of a core = "
        f"{PROFILE_CPU / PROFILE_DELIVERED_S * 1e6:.2f}"
        f" µs per delivered event) gives the lower bound, {nc['low']:.2f} cores: bigger "
        f"batches cost less per event. At {NODE_TARGET:.0%} of a core per node, one node "
        f"holds about **{nc['dashboards_per_node']:,.0f} dashboards** of that workload.",
        "",
        "### Where the limits fall",
        "",
        "Every relay reads the whole stream, so Redis's CPU is `R x (a + b x N)` for R "
        "events/s and N nodes, its egress `R x N x bytes`, and each node pays "
        "`R x read cost` before it serves a single dashboard.",
        "",
        f"| nodes | dashboards (~{nc['dashboards_per_node']:,.0f} a node) | Redis cores at "
        "1,210 ev/s, batched | at 4,010 ev/s, batched | at 4,010 ev/s, one event per request "
        "| egress at 4,010 ev/s, Gbit/s | most ev/s on one Redis core, batched | the same, one "
        "event per request | most ev/s through a 10 Gbit/s NIC | a node's CPU just reading "
        "4,010 ev/s, batched (one event per request) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in NODES:
        lines.append(
            f"| {n:,} | {n * nc['dashboards_per_node']:,.0f} | {1210 * (a + b * n):.2f} | "
            f"{4010 * (a + b * n):.2f} | {4010 * (single + b1 * n):.2f} | "
            f"{4010 * n * e * 8 / 1e9:.2f} | {1 / (a + b * n):,.0f} | "
            f"{1 / (single + b1 * n):,.0f} | {NIC_BYTES_S / (n * e):,.0f} | "
            f"{4010 * p['reader'] * 100:.1f}% ({4010 * reader1 * 100:.0f}%) |")
    n_cpu = (1 / 4010 - a) / b
    n_nic = NIC_BYTES_S / (4010 * e)
    first = "Redis's one core" if n_cpu < n_nic else "a 10 Gbit/s network interface"
    lines += [
        "",
        f"The arithmetic for one cell: 100 nodes at 4,010 events/s, batched, cost Redis "
        f"4,010 x ({us(a)} + 100 x {us(b)}) = {4010 * (a + 100 * b):.2f} CPU-seconds per "
        f"second, and it sends 4,010 x 100 x {e:,.0f} B = {4010 * 100 * e / 1e6:,.0f} MB/s. "
        f"At 4,010 events/s Redis's core is full at (1/4,010 - a) / b = **{n_cpu:,.0f} "
        f"nodes**, a 10 Gbit/s interface at {NIC_BYTES_S / 1e6:,.0f} MB/s / (4,010 x {e:,.0f}"
        f" B) = **{n_nic:,.0f} nodes**: **{first} runs out first**. "
        f"Ingest alone, one event per request with a key, tops out at 1 / {us(single)} = "
        f"**{1 / single:,.0f} events/s** per Redis core, before any reader.",
        "",
        *verdict(ways, nc),
    ]
    return "\n".join(lines) + "\n"


def verdict(ways: dict[str, tuple[float, float]], nc: dict[str, float]) -> list[str]:
    """Where one Redis stands at the scale the docs name, and at each node count."""
    nodes = -(-TARGET_DASHBOARDS // int(nc["dashboards_per_node"]))
    share = {w: 4010 * (ap + rd * nodes) for w, (ap, rd) in ways.items()}
    batched, single = share["batched"], share["one event per request"]
    if max(batched, single) <= REDIS_TARGET:
        said = "**one Redis is enough; sharding is not built.**"
    elif batched <= REDIS_TARGET:
        said = ("**one Redis is enough for batched ingest; sharding is not built.** One event "
                "per request takes Redis past the planned share: the first remedy is fewer, "
                "larger appends (agents batching, or nodes merging concurrent requests into "
                "one append), not more Redis servers.")
    else:
        said = f"**beyond the {REDIS_TARGET:.0%} planned for Redis: one Redis falls short.**"
    lines = [
        f"**At the scale the docs name** ({TARGET_DASHBOARDS:,} dashboards, the benchmark's "
        f"target): {TARGET_DASHBOARDS:,} / {nc['dashboards_per_node']:,.0f} = **{nodes} "
        f"nodes**; at the full workload's 4,010 events/s Redis's main thread is then "
        f"**{batched:.0%}** busy batched and **{single:.0%}** with one event per request: "
        + said,
        "",
        f"Planning Redis at {REDIS_TARGET:.0%} of its core (room for snapshots, resumes and "
        "the catch-up after a failover), the most events/s one Redis takes:",
        "",
    ]
    for n in NODES:
        parts = []
        for w, (ap, rd) in ways.items():
            limit = REDIS_TARGET / (ap + rd * n)
            parts.append(f"{w} {limit:,.0f} ({REDIS_TARGET:.0%} / ({us(ap)} + {n:,} x "
                         f"{us(rd)}))")
        worst = min(REDIS_TARGET / (ap + rd * n) for ap, rd in ways.values())
        best = max(REDIS_TARGET / (ap + rd * n) for ap, rd in ways.values())
        fits = ("fits either way" if worst >= 4010 else
                "fits batched only" if best >= 4010 else
                f"needs {4010 / best:.1f} to {4010 / worst:.1f} times that: more than one Redis")
        lines.append(f"- **{n:,} nodes**: " + "; ".join(parts)
                     + f". The full workload's 4,010 events/s {fits}.")
    return lines


def document(results: dict[str, Any], table_md: str, model_md: str) -> str:
    meta = results["meta"]
    m = meta["machine"]
    runs = results["runs"]
    loads = "; ".join(f"Run {i + 1}: {r['date']}, load average before it {r['load_before']},"
                      f" {r['elapsed_s']:.0f} s" for i, r in enumerate(runs))
    shared = (f"On {m['cores']} cores the publishing and reading processes share the "
              "machine with Redis: throughput and lag figures are those of a contended box; "
              "the CPU-seconds per unit of work, on which the model rests, much less so."
              if m["cores"] in ("1", "2") else "")
    versions = meta["versions"]
    text = (PARTS / "scaling.md").read_text()
    return text.format(
        size=meta["size"], cpu=m["cpu"], cores=m["cores"], ram=m["ram"], kernel=m["kernel"],
        redis=versions.get("redis-server", "?"), python=versions.get("python", "?"),
        runs=loads, shared=shared, table=table_md.strip(), model=model_md.strip())
