"""The table, the plots and docs/benchmarks.md, from the results of a run."""

from __future__ import annotations

import json
import platform
import re
import subprocess
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from .systems import ALL, BENCH, SWARMDASH

Result = dict[str, Any]
Getter = Callable[[Result, dict[str, Any]], float | None]

ROLES = ("nodes", "redis", "haproxy", "loadgen", "publisher")
SERVER_ROLES = ("nodes", "redis", "haproxy")


def _cmd_version(argv: list[str], pattern: str) -> str:
    try:
        text = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "not installed"
    match = re.search(pattern, text)
    return match.group(1) if match else text.strip()[:40]


def _npm_version(package: str, where: Path) -> str:
    try:
        return str(json.loads((where / "node_modules" / package / "package.json").read_text())
                   ["version"])
    except OSError:
        return "not installed"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("gunicorn", "gevent", "eventlet", "flask-socketio", "python-socketio",
                 "python-engineio", "redis", "matplotlib"):
        try:
            out[dist if dist != "redis" else "redis-py"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    out["node"] = _cmd_version(["node", "--version"], r"v?(\S+)")
    peer = BENCH / "peers" / "node"
    out["socket.io"] = _npm_version("socket.io", peer)
    out["@socket.io/redis-adapter"] = _npm_version("@socket.io/redis-adapter", peer)
    out["socket.io-client"] = _npm_version("socket.io-client", BENCH / "loadgen")
    out["redis-server"] = _cmd_version(["redis-server", "--version"], r"v=(\S+)")
    out["haproxy"] = _cmd_version(["haproxy", "-v"], r"version (\S+)")
    return out


# --- figures -----------------------------------------------------------------------------
def reference_step(r: Result, meta: dict[str, Any]) -> dict[str, Any] | None:
    """The step with the reference number of clients (polling has only that one)."""
    for step in r.get("steps", []):
        if step["clients"] == meta["reference"]:
            return step
    return None


def at_ref(fn: Callable[[dict[str, Any]], float | None]) -> Getter:
    def get(r: Result, meta: dict[str, Any]) -> float | None:
        step = reference_step(r, meta)
        return fn(step) if step else None
    return get


def max_held(r: Result, meta: dict[str, Any]) -> float | None:
    if "steps" not in r or r.get("system") == "polling":
        return None
    held = 0
    for step in r["steps"]:
        if not step["held"]:
            break
        held = step["clients"]
    return held


def ramp_kb(r: Result, meta: dict[str, Any]) -> float | None:
    """Memory per connection of the ramp's first step (3 nodes, subscribed, snapshots
    loaded, before the publisher starts)."""
    value = r.get("idle", {}).get("bytes_per_connection")
    return value / 1024 if value is not None else None


def idle_kb(r: Result, meta: dict[str, Any]) -> float | None:
    """The idle step: one node, nothing ever published."""
    value = r.get("idle_step", {}).get("bytes_per_connection")
    return value / 1024 if value is not None else None


def idle_cpu(r: Result, meta: dict[str, Any]) -> float | None:
    """The idle step's node CPU, % of a core, once its clients are in."""
    value: float | None = r.get("idle_step", {}).get("cpu_pct")
    return value


def idle_failed(r: Result, meta: dict[str, Any]) -> float | None:
    step = r.get("idle_step")
    return None if not step or "failed" not in step else step["failed"]


def scale(fn: Callable[[dict[str, Any]], float | None]) -> Getter:
    def get(r: Result, meta: dict[str, Any]) -> float | None:
        step = r.get("scale_step")
        if not step or "window" not in step:
            return None
        return fn(step)
    return get


def completeness_pct(r: Result, meta: dict[str, Any]) -> float | None:
    c = r.get("completeness")
    if not c or not c.get("expected"):
        return None
    return 100 * (c["received"] + c["coalesced"] - c["over"]) / c["expected"]


def server_cpu(step: dict[str, Any]) -> float | None:
    values = [step["cpu_s_per_million"].get(role) for role in SERVER_ROLES]
    return sum(v for v in values if v is not None) if all(v is not None for v in values) else None


def lat(kind: str, q: str) -> Getter:
    return at_ref(lambda s: s[kind][q])


def channel_p99(channel: str) -> Getter:
    return at_ref(lambda s: s["latency"][channel]["p99"])


def hop(q: str) -> Getter:
    return at_ref(lambda s: (s.get("redis_hop") or {}).get(q))


def role_cpu(role: str) -> Getter:
    return at_ref(lambda s: s["cpu_s_per_million"].get(role))


#: (section, figure, unit, target, better, getter); better: "high" or "low".
FIGURES: list[tuple[str, str, str, str, str, Getter]] = [
    ("1 clients", "most clients held (p99 <= window + 100 ms)", "clients", ">= 10,000", "high",
     max_held),
    ("1 clients", "alert p99 publish -> receive, reference clients", "ms", "<= 50", "low",
     channel_p99("alert")),
    ("1 clients", "idle memory per subscribed websocket (one node, nothing published)", "KB",
     "<= 40", "low", idle_kb),
    ("1 clients", "idle step: clients that failed to connect and subscribe", "clients", "0",
     "low", idle_failed),
    ("1 clients", "idle step: the node's CPU holding them (nothing published)", "% of a core",
     "", "low", idle_cpu),
    ("1 clients", "memory per connection, first ramp step (snapshot loaded, no events yet)",
     "KB", "", "low", ramp_kb),
    ("1 clients", "connection scale: clients held through one HAProxy (quiet workload)",
     "clients", "", "high", scale(lambda s: s["clients"] if s["window"]["held"] else 0)),
    ("1 clients", "connection scale: clients connected", "clients", "", "high",
     scale(lambda s: s["window"]["connected"])),
    ("1 clients", "connection scale: p99, every event (window included)", "ms", "", "low",
     scale(lambda s: s["window"]["all_incl"]["p99"])),
    ("1 clients", "connection scale: nodes' memory (3 nodes)", "MB", "", "low",
     scale(lambda s: s["window"]["rss_nodes"] / 2**20)),
    ("1 clients", "connection scale: nodes' CPU", "% of a core", "", "low",
     scale(lambda s: s["window"]["cpu_pct"]["nodes"])),
    ("2 throughput", "delivered events/s", "ev/s", "", "high",
     at_ref(lambda s: s["delivered_per_s"])),
    ("2 throughput", "CPU-s per million delivered: nodes", "s", "", "low", role_cpu("nodes")),
    ("2 throughput", "CPU-s per million delivered: Redis", "s", "", "low", role_cpu("redis")),
    ("2 throughput", "CPU-s per million delivered: HAProxy", "s", "", "low", role_cpu("haproxy")),
    ("2 throughput", "CPU-s per million delivered: load generator (clients)", "s", "", "low",
     role_cpu("loadgen")),
    ("2 throughput", "CPU-s per million delivered: load generator (publisher)", "s", "", "low",
     role_cpu("publisher")),
    ("3 latency", "batched p50, window included (publish -> receive)", "ms", "", "low",
     lat("batched_incl", "p50")),
    ("3 latency", "batched p99, window included", "ms", "", "low", lat("batched_incl", "p99")),
    ("3 latency", "batched max, window included", "ms", "", "low", lat("batched_incl", "max")),
    ("3 latency", "batched p50, window excluded (flush -> receive)", "ms", "", "low",
     lat("batched_flush", "p50")),
    ("3 latency", "batched p99, window excluded", "ms", "", "low", lat("batched_flush", "p99")),
    ("3 latency", "batched max, window excluded", "ms", "", "low", lat("batched_flush", "max")),
    ("3 latency", "Redis hop p50 (publish -> stream reader)", "ms", "", "low", hop("p50")),
    ("3 latency", "Redis hop p99", "ms", "<= 2", "low", hop("p99")),
    ("3 latency", "Redis hop max", "ms", "", "low", hop("max")),
    ("4 wire", "bytes on the wire per delivered event (client sockets)", "B", "", "low",
     at_ref(lambda s: s["bytes_per_event"])),
    ("4 wire", "server CPU-s per million delivered (nodes + Redis + HAProxy)", "s", "", "low",
     at_ref(server_cpu)),
    ("4 wire", "freshness p99, every event (publish -> receive)", "ms", "", "low",
     lat("all_incl", "p99")),
    ("check", "completeness (received + coalesced) / published", "%", "100", "high",
     completeness_pct),
    ("check", "nodes taken out by HAProxy's health checks during the ramp", "times", "0", "low",
     lambda r, meta: r.get("marked_down") if r.get("system") != "polling" else None),
    ("check", "load generator CPU (clients), reference step", "% of a core", "", "low",
     at_ref(lambda s: s["cpu_pct"]["loadgen"])),
    ("check", "load generator event-loop delay p99", "ms", "", "low",
     at_ref(lambda s: s["loadgen_loop_delay_p99_ms"])),
]


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value == int(value) and abs(value) < 1e6:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return ""
    return f" ({ours / theirs:.2f}x)"


def columns(results: dict[str, Result]) -> list[str]:
    keys = [s.key for s in ALL if s.key in results]
    if "swarmdash-before" in results:  # beside the SwarmDash column it is the before of
        keys.insert(1, "swarmdash-before")
    return keys


def table(meta: dict[str, Any], results: dict[str, Result]) -> str:
    cols = columns(results)
    titles = {s.key: s.title for s in ALL} | {"swarmdash-before": "SwarmDash before (gevent)"}
    ours = results.get(SWARMDASH.key, {})
    lines = [f"Size {meta['size']}: {meta['workload']['agents']} agents in "
             f"{meta['workload']['swarms']} swarms, {sum(meta['rates'].values()):,.0f} events/s "
             f"published; reference step {meta['reference']} clients; ramp "
             f"{', '.join(str(s) for s in meta['steps'])}. Peer cells: value (SwarmDash/peer).",
             "",
             "| # | figure | unit | target | " + " | ".join(titles[c] for c in cols) + " |",
             "|---|---|---|---|" + "---|" * len(cols)]
    for section, name, unit, target, _better, get in FIGURES:
        mine = get(ours, meta) if ours else None
        cells = []
        for c in cols:
            value = get(results[c], meta)
            cells.append(fmt(value) + ("" if c == SWARMDASH.key else ratio(mine, value)))
        lines.append(f"| {section} | {name} | {unit} | {target} | " + " | ".join(cells) + " |")
    errors = [f"- {titles[c]}: {results[c]['error']}" for c in cols if results[c].get("error")]
    if errors:
        lines += ["", "Errors:", *errors]
    lines += ["", targets(meta, results)]
    return "\n".join(lines) + "\n"


def targets(meta: dict[str, Any], results: dict[str, Result]) -> str:
    ours = results.get(SWARMDASH.key)
    if not ours:
        return ""
    ref = reference_step(ours, meta) or {}
    rows = ["| target | measured | met |", "|---|---|---|"]

    def row(name: str, value: float | None, ok: bool | None, unit: str = "") -> None:
        rows.append(f"| {name} | {fmt(value)}{unit} | "
                    f"{'—' if ok is None else ('yes' if ok else 'no')} |")

    held = max_held(ours, meta)
    row("10,000 clients held", held, None if held is None else held >= 10000)
    alert = channel_p99("alert")(ours, meta)
    row(f"alert p99 <= 50 ms at {meta['reference']} clients", alert,
        None if alert is None else alert <= 50, " ms")
    idle = idle_kb(ours, meta)
    row("idle memory <= 40 KB per subscribed websocket", idle,
        None if idle is None else idle <= 40, " KB")
    hop99 = hop("p99")(ours, meta)
    row("Redis hop p99 <= 2 ms", hop99, None if hop99 is None else hop99 <= 2, " ms")
    polling = results.get("polling")
    pref = reference_step(polling, meta) if polling else None
    if pref and ref:
        for name, key, goal in (("bytes per delivered event", "bytes_per_event", 95),
                                ("server CPU per delivered event", "server", 90)):
            a = server_cpu(ref) if key == "server" else ref.get(key)
            b = server_cpu(pref) if key == "server" else pref.get(key)
            saved = 100 * (1 - a / b) if a is not None and b else None
            row(f"{name}: >= {goal}% less than polling", saved,
                None if saved is None else saved >= goal, "% less")
    return "Targets (SwarmDash, gevent):\n\n" + "\n".join(rows)


# --- plots -------------------------------------------------------------------------------
MARKERS = "osD^vP*Xhp"


def _bar_labels(ax: Any, bars: Any, values: list[float | None], unit: str) -> None:
    """The value at the end of each horizontal bar ("—" when the system has none)."""
    for bar, value in zip(bars, values, strict=True):
        text = "—" if value is None else f"{fmt(value)}{unit}"
        ax.annotate(text, (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)


def _hbars(ax: Any, names: list[str], values: list[float | None], unit: str,
           highlight: int | None = 0) -> None:
    """Horizontal bars on a linear axis, first system on top, values written out."""
    colors = ["C0" if i == highlight else "C7" for i in range(len(names))]
    bars = ax.barh(names, [v or 0.0 for v in values], color=colors)
    _bar_labels(ax, bars, values, unit)
    if not ax.yaxis_inverted():  # axes sharing y invert together: once is enough
        ax.invert_yaxis()
    ax.margins(x=0.25)
    ax.tick_params(axis="y", labelsize=8)
    ax.tick_params(axis="x", labelsize=7)


def plots(meta: dict[str, Any], results: dict[str, Result], out: Path) -> list[Path]:
    """ramp.png, cpu.png and wire.png: every series visible, every label readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {s.key: s.title for s in ALL} | {"swarmdash-before": "SwarmDash before (gevent)"}
    ramped = [c for c in columns(results) if c != "polling" and results[c].get("steps")]
    made: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = out / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        made.append(path)

    # ramp: the steps evenly spaced, one colour and marker per system, each system beside
    # the others within a step (as grouped bars are) so that none hides another.
    steps_all = sorted({s["clients"] for c in ramped for s in results[c]["steps"]})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    for i, c in enumerate(ramped):
        steps = results[c]["steps"]
        offset = (i - (len(ramped) - 1) / 2) * 0.09
        xs = [steps_all.index(s["clients"]) + offset for s in steps]
        style = {"marker": MARKERS[i % len(MARKERS)], "color": f"C{i % 10}",
                 "label": titles[c] + ("" if len(steps) > 1 else " (one step)"),
                 "markersize": 7 if len(steps) > 1 else 9, "linewidth": 1.5,
                 "markerfacecolor": "none" if len(steps) == 1 else f"C{i % 10}"}
        ax1.plot(xs, [s["batched_incl"]["p99"] or float("nan") for s in steps], **style)
        ax2.plot(xs, [float("nan") if s["delivered_per_s"] is None else s["delivered_per_s"] / 1000
                      for s in steps], **style)
    for ax in (ax1, ax2):
        ax.set_xticks(range(len(steps_all)), [f"{n:,}" for n in steps_all])
        ax.set_xlim(-0.5, len(steps_all) - 0.5)
        ax.set_xlabel("websocket clients (ramp step)")
        ax.grid(True, axis="y", alpha=0.3)
        for edge in range(len(steps_all) - 1):
            ax.axvline(edge + 0.5, color="0.85", linewidth=0.8)
    ax1.set(ylabel="p99 publish -> receive, ms (log)", yscale="log",
            title="Latency under the ramp (batch window included)")
    ax2.set(ylabel="thousand events delivered / s", title="Delivered events per second")
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.14))
    fig.tight_layout()
    save(fig, "ramp.png")

    # cpu: one panel per role on a linear axis of its own (a stack on a log axis would
    # shrink the upper parts); the server roles first.
    cols = [c for c in columns(results) if reference_step(results[c], meta)]
    names = [titles[c] for c in cols]
    fig, axes = plt.subplots(1, len(ROLES), figsize=(14, 0.32 * len(cols) + 1.6), sharey=True)
    for ax, role in zip(axes, ROLES, strict=True):
        _hbars(ax, names, [role_cpu(role)(results[c], meta) for c in cols], "")
        ax.set_title(role + (" (server)" if role in SERVER_ROLES else " (load)"), fontsize=9)
    fig.suptitle(f"CPU-seconds per million delivered events at {meta['reference']} clients, "
                 "by process", fontsize=10)
    fig.tight_layout()
    save(fig, "cpu.png")

    # wire: horizontal bars, so every system's name reads on one line.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 0.32 * len(cols) + 1.6), sharey=True)
    _hbars(ax1, names, [at_ref(lambda s: s["bytes_per_event"])(results[c], meta)
                        for c in cols], " B")
    ax1.set_title("Bytes on the wire per delivered event (client sockets)", fontsize=9)
    _hbars(ax2, names, [lat("all_incl", "p99")(results[c], meta) for c in cols], " ms")
    ax2.set_title("Freshness p99, every event (publish -> receive)", fontsize=9)
    fig.tight_layout()
    save(fig, "wire.png")
    return made


# --- docs/benchmarks.md ------------------------------------------------------------------
def document(meta: dict[str, Any], results: dict[str, Result], table_md: str,
             images: list[str]) -> str:
    from .docs_text import render

    return render(meta, results, table_md, images)
