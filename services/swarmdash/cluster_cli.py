"""``swarmdash cluster``: the local cluster without Docker (see :mod:`swarmdash.localcluster`).

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
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .localcluster import MAX_NODES, REDIS_MODES, ClusterError, LocalCluster, Ports
from .processes import Timeout

DEFAULT_DIR = ".swarmdash-cluster"


def _print_status(status: dict[str, Any]) -> None:
    entry = status["entrypoint"]
    print(f"entrypoint  {entry['http']}  {entry['https']}  stats {entry['stats']}")
    print("services    " + "  ".join(f"{k}={v}" for k, v in status["services"].items()))
    cols = ("node", "address", "process", "haproxy", "registry", "clients", "uptime")
    rows = [[str(n.get(c) if n.get(c) is not None else "-") for c in cols]
            for n in status["nodes"]]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    totals = status.get("totals") or {}
    print(f"live nodes {totals.get('nodes', 0)}, viewers {totals.get('clients', 0)}"
          + (f" {totals['clients_per_swarm']}" if totals.get("clients_per_swarm") else ""))


def cmd_cluster(args: argparse.Namespace) -> int:
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
                                   prometheus=args.prometheus, redis=args.redis)
            print(f"starting {args.nodes} nodes in {cluster.dir} …", file=sys.stderr)
            cluster.up()
            _print_status(cluster.status())
            print(f"logs: {cluster.logs}/   stop: swarmdash cluster down --dir {args.dir}")
            print(f"sign in: SWARMDASH_ENV_FILE={args.dir}/node.env swarmdash token "
                  f"--all-swarms --ttl 8h --url {cluster.http_url}   (open the link it prints)\n"
                  f"publish: SWARMDASH_ENV_FILE={args.dir}/simulator.env swarmdash simulate "
                  f"--url {cluster.http_url}")
            return 0
        cluster = LocalCluster.load(workdir)
        if args.action == "status":
            status = cluster.status()
            if args.json:
                print(json.dumps(status, indent=2))
            else:
                _print_status(status)
            return 0
        if args.action == "down":
            cluster.down()
            print("stopped")
        elif args.action == "add-node":
            node = cluster.add_node()
            print(f"{node.name} up at {node.host}:{cluster.state.ports.node}, in HAProxy")
        elif args.action == "remove-node":
            cluster.remove_node(args.name)
            print(f"{args.name} drained and stopped")
        elif args.action == "restart-node":
            cluster.restart_node(args.name)
            print(f"{args.name} restarted and back in HAProxy")
        elif args.action == "rolling-restart":
            cluster.rolling_restart(lambda name: print(f"{name} restarted", flush=True))
        elif args.action == "restart-haproxy":
            cluster.restart_haproxy()
            print("haproxy restarted")
        elif args.action == "restart-redis":
            cluster.restart_redis()
            print("redis-server restarted")
        elif args.action == "redis-failover":
            port = cluster.redis_failover()
            print(f"primary moved: redis on 127.0.0.1:{port} is the primary now")
        elif args.action == "kill-redis-server":
            cluster.kill_redis_server(args.name)
            print(f"{args.name} killed (SIGKILL)")
        elif args.action == "restart-redis-server":
            cluster.restart_redis_server(args.name)
            print(f"{args.name} started" + ("" if args.name.startswith("sentinel") else
                                            "; Sentinel makes it a replica of the primary"))
        elif args.action == "kill-node":
            cluster.kill_node(args.name)
            print(f"{args.name} killed (SIGKILL)")
    except (ClusterError, Timeout) as exc:
        print(f"swarmdash cluster: {exc}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("cluster", help="run the whole cluster locally without Docker",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default=DEFAULT_DIR, help="state, logs and data (default: %(default)s)")
    actions = p.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="start redis-server, the nodes and HAProxy")
    up.add_argument("--nodes", type=int, default=3, help=f"1 to {MAX_NODES} (default 3)")
    up.add_argument("--prometheus", action="store_true", help="also run Prometheus")
    up.add_argument("--redis", choices=REDIS_MODES, default="single",
                    help="one redis-server, or a primary, two replicas and three sentinels "
                         "(default %(default)s)")
    up.add_argument("--stickiness", choices=("source", "cookie", "none"), default="source",
                    help="how HAProxy keeps a Socket.IO session on its node")
    up.add_argument("--net", default="127.0.1", help="nodes bind NET.1, NET.2, …")
    up.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="a setting for every node (repeatable)")
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
        up.add_argument(f"--{name}", type=int, default=getattr(defaults, attr),
                        help=f"{help_} (default %(default)s)")
    status = actions.add_parser("status", help="processes, HAProxy's view and the registry")
    status.add_argument("--json", action="store_true")
    actions.add_parser("down", help="stop everything the cluster started")
    actions.add_parser("add-node", help="scale out by one node")
    for action, help_ in (("remove-node", "drain a node, then stop it"),
                          ("restart-node", "restart one node"),
                          ("kill-node", "SIGKILL one node (a crash)"),
                          ("kill-redis-server",
                           "SIGKILL one Redis server or sentinel (--redis sentinel)"),
                          ("restart-redis-server",
                           "start one Redis server or sentinel again (--redis sentinel)")):
        a = actions.add_parser(action, help=help_)
        a.add_argument("name")
    actions.add_parser("rolling-restart", help="restart every node, one at a time")
    actions.add_parser("restart-haproxy", help="stop and start HAProxy")
    actions.add_parser("restart-redis", help="stop and start redis-server (AOF keeps the data)")
    actions.add_parser("redis-failover",
                       help="SENTINEL FAILOVER: promote a replica (--redis sentinel)")
    p.set_defaults(func=cmd_cluster)
