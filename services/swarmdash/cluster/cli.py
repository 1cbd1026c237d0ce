"""``swarmdash cluster``: the local cluster without Docker (see :mod:`swarmdash.cluster.local`).

    swarmdash cluster up --nodes 3 [--prometheus]   redis-server, nodes, HAProxy (+ Prometheus)
    swarmdash cluster status [--json]               processes, HAProxy's view, the registry
    swarmdash cluster add-node                      scale out by one node
    swarmdash cluster remove-node NAME              scale in: drain, then stop
    swarmdash cluster restart-node NAME             stop and start one node
    swarmdash cluster rolling-restart               every node, one at a time
    swarmdash cluster restart-haproxy | restart-redis
    swarmdash cluster up --redis sentinel           a Redis primary, two replicas, three sentinels
    swarmdash cluster redis-failover                SENTINEL FAILOVER: move the primary
    swarmdash cluster kill-redis-server NAME        SIGKILL redis1..3 or sentinel1..3
    swarmdash cluster restart-redis-server NAME     start it again (a server rejoins as a replica)
    swarmdash cluster down                          stop everything it started

--dir DIR (default .swarmdash-cluster) goes before or after the action.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .ports import MAX_NODES, REDIS_MODES, Ports

DEFAULT_DIR = ".swarmdash-cluster"


def _table(cols: tuple[str, ...], rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    lines = [cols, *rows]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def duration(seconds: float | None) -> str:
    """``3d 4h``, ``2h 05m``, ``7m 12s``, ``42s``: an uptime a person reads at a glance."""
    if seconds is None:
        return "-"
    s = int(seconds)
    days, hours, minutes = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {s % 60:02d}s" if minutes else f"{s}s"


def format_status(status: dict[str, Any]) -> str:
    entry = status["entrypoint"]
    out = [f"entrypoint  {entry['http']}  {entry['https']}  stats {entry['stats']}",
           "services    " + "  ".join(f"{k}={v}" for k, v in status["services"].items()), ""]
    cols = ("node", "address", "process", "haproxy", "registry", "viewers", "uptime", "pid")
    rows = [[n["node"], n["address"], n["process"], n["haproxy"], n["registry"],
             str(n.get("clients", 0)), duration(n.get("uptime")), str(n.get("pid") or "-")]
            for n in status["nodes"]]
    out.append(_table(cols, rows) if rows else "no nodes")
    totals = status.get("totals") or {}
    out += ["", f"live nodes {totals.get('nodes', 0)}, viewers {totals.get('clients', 0)}"]
    per_swarm = totals.get("clients_per_swarm") or {}
    if per_swarm:
        out += ["", _table(("swarm", "viewers"),
                           [[name, str(n)] for name, n in sorted(per_swarm.items())])]
    return "\n".join(out)


def _print_status(status: dict[str, Any]) -> None:
    print(format_status(status))


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_cluster(args: argparse.Namespace) -> int:
    from .local import ClusterError, LocalCluster
    from .processes import Timeout

    workdir = Path(args.dir)
    try:
        if args.action == "up":
            ports = Ports(plain=args.port, https=args.https_port, http=args.http_port,
                          stats=args.stats_port, dns=args.dns_port, redis=args.redis_port,
                          node=args.node_port, prometheus=args.prometheus_port,
                          sentinel=args.sentinel_port)
            env = dict(kv.split("=", 1) for kv in args.env)
            cluster = LocalCluster(workdir, args.nodes, ports=ports, net=args.net,
                                   stickiness=args.stickiness, node_env=env,
                                   prometheus=args.prometheus, progress=_progress,
                                   redis=args.redis)
            _progress(f"starting {args.nodes} nodes in {cluster.dir}")
            cluster.up()
            _print_status(cluster.status())
            print(f"logs: {cluster.logs}/   stop: swarmdash cluster down --dir {args.dir}")
            print(f"sign in: SWARMDASH_ENV_FILE={args.dir}/node.env swarmdash token "
                  f"--all-swarms --ttl 8h --url {cluster.http_url}   (open the link it prints)\n"
                  f"publish: SWARMDASH_ENV_FILE={args.dir}/simulator.env swarmdash simulate "
                  f"--url {cluster.http_url}")
            return 0
        cluster = LocalCluster.load(workdir)
        cluster.progress = _progress
        if args.action == "status":
            status = cluster.status()
            if args.json:
                print(json.dumps(status, indent=2))
            else:
                _print_status(status)
            return 0
        if args.action == "add-node":
            node = cluster.add_node()
            print(f"{node.name} up at {node.host}:{cluster.state.ports.node}, in HAProxy")
        elif args.action == "rolling-restart":
            cluster.rolling_restart(lambda name: print(f"{name} restarted", flush=True))
        elif args.action == "redis-failover":
            port = cluster.redis_failover()
            print(f"primary moved: redis on 127.0.0.1:{port} is the primary now")
        elif args.action in ("down", "restart-haproxy", "restart-redis"):
            action, done = {"down": (cluster.down, "stopped"),
                            "restart-haproxy": (cluster.restart_haproxy, "haproxy restarted"),
                            "restart-redis": (cluster.restart_redis, "redis-server restarted"),
                            }[args.action]
            action()
            print(done)
        else:  # an action on one node or Redis process: args.name
            named, said = {
                "remove-node": (cluster.remove_node, "drained and stopped"),
                "restart-node": (cluster.restart_node, "restarted and back in HAProxy"),
                "kill-node": (cluster.kill_node, "killed (SIGKILL)"),
                "kill-redis-server": (cluster.kill_redis_server, "killed (SIGKILL)"),
                "restart-redis-server": (cluster.restart_redis_server, "started" + (
                    "" if args.name.startswith("sentinel") else
                    "; Sentinel makes it a replica of the primary")),
            }[args.action]
            named(args.name)
            print(f"{args.name} {said}")
    except (ClusterError, Timeout) as exc:
        print(f"swarmdash cluster: {exc}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    p = sub.add_parser("cluster", help="run the whole cluster locally without Docker",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    dir_help = "state, logs and data (default: %(default)s)"
    p.add_argument("--dir", default=DEFAULT_DIR, help=dir_help)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_: str) -> argparse.ArgumentParser:
        a: argparse.ArgumentParser = actions.add_parser(name, help=help_, description=help_,
                                                        formatter_class=formatter)
        # also after the action, as the commands this one prints have it; SUPPRESS keeps a
        # --dir given before the action
        a.add_argument("--dir", default=argparse.SUPPRESS,
                       help=f"state, logs and data (default: {DEFAULT_DIR})")
        return a

    up = action("up", "start redis-server, the nodes and HAProxy")
    up.add_argument("--nodes", type=int, default=3, help=f"1 to {MAX_NODES}")
    up.add_argument("--prometheus", action="store_true", help="also run Prometheus")
    up.add_argument("--redis", choices=REDIS_MODES, default="single",
                    help="one redis-server, or a primary, two replicas and three sentinels "
                         "(default %(default)s)")
    up.add_argument("--stickiness", choices=("source", "cookie", "none"), default="source",
                    help="how HAProxy keeps a Socket.IO session on its node")
    up.add_argument("--net", default="127.0.1", help="nodes bind NET.1, NET.2, …")
    up.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="a setting for every node (repeatable; default: none)")
    defaults = Ports()
    for name, help_ in (("port", "HAProxy plain HTTP"), ("https-port", "HAProxy HTTPS"),
                        ("http-port", "HAProxy HTTP, redirected to HTTPS"),
                        ("stats-port", "HAProxy stats and metrics"),
                        ("dns-port", "the node-name DNS responder (UDP)"),
                        ("redis-port", "redis-server (the first of three with --redis "
                                       "sentinel)"),
                        ("node-port", "every node"), ("prometheus-port", "Prometheus"),
                        ("sentinel-port", "the first of three sentinels (--redis sentinel)")):
        attr = "plain" if name == "port" else name.removesuffix("-port")
        up.add_argument(f"--{name}", type=int, default=getattr(defaults, attr), help=help_)
    status = action("status", "processes, HAProxy's view and the registry")
    status.add_argument("--json", action="store_true", help="print it as JSON")
    action("down", "stop everything the cluster started")
    action("add-node", "scale out by one node")
    for name, help_ in (("remove-node", "drain a node, then stop it"),
                        ("restart-node", "restart one node"),
                        ("kill-node", "SIGKILL one node (a crash)")):
        action(name, help_).add_argument("name", help="the node, e.g. node2 (cluster status)")
    action("rolling-restart", "restart every node, one at a time")
    action("restart-haproxy", "stop and start HAProxy")
    action("restart-redis", "stop and start redis-server (AOF keeps the data)")
    for name, help_ in (("kill-redis-server",
                         "SIGKILL one Redis server or sentinel (--redis sentinel)"),
                        ("restart-redis-server",
                         "start one Redis server or sentinel again (--redis sentinel)")):
        action(name, help_).add_argument("name", help="e.g. redis1 or sentinel2 (cluster status)")
    action("redis-failover", "SENTINEL FAILOVER: promote a replica (--redis sentinel)")
    p.set_defaults(func=cmd_cluster)
