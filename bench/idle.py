"""Two steps of their own: idle memory per connection, and the connection-scale step.

**Idle**: one node, no publisher. ``n`` official-client websockets connect straight to the
node (about ``rate`` per second) and subscribe to one swarm; nothing is ever published.
The figure is the node's RSS after they are in and settled, less its RSS before, over the
clients that connected and subscribed: only what an idle subscribed connection costs. Then
the node's CPU over ``IDLE_CPU_S``: what holding them costs (pings, timers, health
checks), with nothing to deliver.
A tenth of the clients connect first and are not counted, so one-off allocations of the
first connections do not land on the figure.

**Connection scale**: as many dashboards as one HAProxy can hold on this machine, each
subscribed to one swarm of a quiet workload, through the usual 3-node cluster; the window
figures are those of the ramp (clients held, latency, memory, CPU).
"""

from __future__ import annotations

import time
from typing import Any

from . import procstat
from .loadgen import LoadGen
from .run import Publisher, Run, haproxy_maxconn, viewer_token
from .sizes import Size
from .systems import BenchCluster, System
from .workload import Workload

#: Seconds over which the idle step reads the node's CPU (a few ping rounds of its clients).
IDLE_CPU_S = 10.0
#: Every client subscribes to the same single swarm (all_every larger than any n).
ONE_SWARM = 10**9


def node_url(cluster: BenchCluster) -> str:
    node = cluster.state.nodes[0]
    return f"http://{node.host}:{cluster.state.ports.node}"


def idle(run: Run, system: System, n: int, rate: float, settle_s: float) -> dict[str, Any]:
    workdir = run.o.out / "clusters" / f"{system.key}-idle"
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = BenchCluster(workdir, system, nodes=1, maxconn=haproxy_maxconn(n))
    lg: LoadGen | None = None
    out: dict[str, Any] = {"clients": n}
    try:
        cluster.up()
        token = viewer_token(cluster) if system.kind == "swarmdash" else None
        auth = {"token": token} if token else None
        url = node_url(cluster)
        nodes = lambda: procstat.tree(cluster.role_pids()["nodes"])  # noqa: E731
        lg = LoadGen(2, run.size.sources, workdir)
        warm = max(1, n // 10)
        lg.connect(warm, url, swarms=1, all_every=ONE_SWARM, rate=rate, auth=auth)
        time.sleep(settle_s)
        rss0 = procstat.rss_bytes(nodes())
        t0 = time.monotonic()
        ok, failed = lg.connect(n - warm, url, swarms=1, all_every=ONE_SWARM, rate=rate,
                                auth=auth)
        connect_s = time.monotonic() - t0
        time.sleep(settle_s)
        rss1 = procstat.rss_bytes(nodes())
        cpu0, t1 = procstat.cpu_seconds(nodes()), time.monotonic()
        time.sleep(IDLE_CPU_S)  # what the node spends holding them: pings, timers, checks
        cpu_pct = 100 * (procstat.cpu_seconds(nodes()) - cpu0) / (time.monotonic() - t1)
        out.update({"counted": ok, "failed": failed, "connect_s": round(connect_s, 2),
                    "rss_before": rss0, "rss_after": rss1, "cpu_pct": cpu_pct,
                    "bytes_per_connection": (rss1 - rss0) / ok if ok else None,
                    "connected": lg.report().connected})
    except Exception as exc:  # reported in the table, never a crash of the whole run
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if lg is not None:
            lg.close()
        cluster.down()
    return out


#: The quiet workload of the connection-scale step: 50 agents, about 50 events/s.
QUIET = Workload(agents=50, swarms=5, agent_rate=0.4, task_rate=0.2, metric_rate=0.2,
                 log_rate=0.2, alert_rate=0.5)


def scale(run: Run, system: System, n: int, rate: float, settle_s: float,
          measure_s: float) -> dict[str, Any]:
    workdir = run.o.out / "clusters" / f"{system.key}-scale"
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = BenchCluster(workdir, system, maxconn=haproxy_maxconn(n))
    size = Size("scale", QUIET, steps=(n,), reference=n, settle_s=settle_s,
                measure_s=measure_s, loadgen_processes=run.size.loadgen_processes,
                sources=run.size.sources, connect_rate=rate, all_every=ONE_SWARM)
    lg: LoadGen | None = None
    publisher: Publisher | None = None
    out: dict[str, Any] = {"clients": n, "maxconn": haproxy_maxconn(n)}
    saved = run.size
    try:
        cluster.up()
        run.size = size
        run.token = viewer_token(cluster) if system.kind == "swarmdash" else None
        lg = LoadGen(size.loadgen_processes, size.sources, workdir)
        t0 = time.monotonic()
        ok, failed = lg.connect(n, cluster.http_url, swarms=QUIET.swarms, all_every=ONE_SWARM,
                                rate=rate, auth=run._auth(), timeout=900)
        out.update({"connected_ok": ok, "failed": failed,
                    "connect_s": round(time.monotonic() - t0, 1)})
        publisher = Publisher(system, cluster, size, settle_s + measure_s + 120, workdir)
        time.sleep(settle_s)
        _, m = run._measure(cluster, lg, publisher, f"{system.key}: {n} clients (scale)")
        m["rss_nodes"] = procstat.rss_bytes(procstat.tree(cluster.role_pids()["nodes"]))
        m["held"] = run._held(system, m, ok) and failed == 0
        out["window"] = m
        out["published"] = publisher.stop()
        publisher = None
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        run.size = saved
        if publisher is not None:
            publisher.stop()
        if lg is not None:
            lg.close()
        cluster.down()
    return out
