"""``swarmdash``: serve | demo | simulate | publish | notify | watch | cluster | settings |
apikey | token.

Nothing heavy is imported at module level. ``serve`` and ``demo`` monkey-patch for their
engine (gevent under gunicorn, or eventlet) before gunicorn, Flask, Redis or ssl are
imported. Errors an operator can fix end the command with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from . import __version__
from .settings import (
    ASYNC_MODES,
    PLACEHOLDER_SECRET_KEYS,
    Settings,
    SettingsError,
    check_serving,
    check_url,
    describe,
    effective,
    load_settings,
)

DESCRIPTION = """SwarmDash: the real-time dashboard backend for swarms of bots.

Run a node (serve), try it alone (demo), feed it (simulate, publish, notify), watch a
subscription (watch), run a local cluster (cluster), check the settings (settings) and
give out credentials (apikey, token). Settings come from the environment and .env
(docs/configuration.md); `swarmdash COMMAND --help` shows a command's flags."""


def patch_engine(mode: str) -> None:
    """Monkey-patch the standard library for ``mode``; must run before other imports."""
    if mode == "eventlet":
        import eventlet

        eventlet.monkey_patch()
    elif mode == "gevent":
        from gevent import monkey

        monkey.patch_all()


def _settings(**flags: Any) -> Settings:
    """The settings in effect, with the flags given (variable -> value) checked and applied."""
    return load_settings(overrides={k: str(v) for k, v in flags.items() if v is not None})


def _port_taken(host: str, port: int) -> str | None:
    """A one-line reason when ``host:port`` cannot be bound, before any banner is printed."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    family, kind, _, _, address = infos[0]
    with socket.socket(family, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def _check_port(command: str, s: Settings) -> None:
    reason = _port_taken(s.host, s.port)
    if reason:
        raise SystemExit(f"{command}: {reason} (another node or demo? choose --port)")


def cmd_serve(args: argparse.Namespace) -> int:
    s = _settings(HOST=args.host, PORT=args.port, ASYNC_MODE=args.async_mode)
    check_serving(s)  # refuse at once, before gunicorn starts
    _check_port("serve", s)
    print(f"swarmdash node {s.node_name} ({s.async_mode}) on http://{s.host}:{s.port}",
          file=sys.stderr, flush=True)
    if s.async_mode == "gevent":  # the production server: gunicorn's gevent worker
        patch_engine("gevent")  # before gunicorn imports ssl; its worker patches again
        from .serving import run_gunicorn

        def load() -> Any:
            from .app import create_app

            return create_app(s, async_mode="gevent")

        run_gunicorn(load, s)
        return 0
    patch_engine(s.async_mode)
    from .app import create_app

    app = create_app(s, async_mode=s.async_mode)
    from .gcfreeze import freeze_start_up

    freeze_start_up()  # as the gunicorn worker does once the app is loaded
    # Never Werkzeug's interactive debugger or reloader, FLASK_DEBUG or not: the debugger
    # runs code for whoever reaches the port. (Flask's own run() reads FLASK_DEBUG from the
    # environment, hence use_debugger for the threading server.)
    no_debugger = {"use_debugger": False} if s.async_mode == "threading" else {}
    app.extensions["socketio"].run(app, host=s.host, port=s.port, allow_unsafe_werkzeug=True,
                                   log_output=s.log_level == "debug", debug=False,
                                   use_reloader=False, **no_debugger)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import secrets

    s = _settings(HOST=args.host, PORT=args.port, REDIS_URL=args.redis_url).replace(
        redis_url=args.redis_url or "", message_queue_url="", async_mode="gevent",
        auth_disabled=True)  # a local demo: no keys, no tokens (the node says so)
    _check_port("demo", s)
    patch_engine("gevent")  # before gunicorn imports ssl; its worker patches again
    if s.secret_key in PLACEHOLDER_SECRET_KEYS:
        s = s.replace(secret_key=secrets.token_hex(32))  # signs nothing anyone keeps

    def load() -> Any:  # runs in the gunicorn worker, after gevent patched it
        from .app import create_app
        from .events import validate_batch
        from .node import node_of
        from .simulator import SwarmSimulator

        app = create_app(s, async_mode="gevent")
        node = node_of(app)
        sim = SwarmSimulator(swarms=args.swarms, agents=args.agents, seed=args.seed)

        def send(batch: list[dict[str, Any]]) -> None:
            for start in range(0, len(batch), s.max_events_per_request):
                chunk = batch[start:start + s.max_events_per_request]
                node.event_log.append(validate_batch(chunk, max_events=len(chunk),
                                                     max_event_bytes=s.max_event_bytes))

        node.socketio.start_background_task(
            sim.run, send, rate=args.rate, duration=None, sleep=node.socketio.sleep)
        return app

    from .serving import run_gunicorn

    host = "localhost" if s.host in ("127.0.0.1", "0.0.0.0") else s.host
    print(f"SwarmDash demo: {args.agents} simulated agents in {args.swarms} swarms, "
          f"{args.rate:g} events/s\n  dashboard  http://{host}:{s.port}/\n"
          f"  snapshot   http://{host}:{s.port}/api/v1/snapshot\n"
          f"  auth is off (AUTH_DISABLED): anyone who reaches this port may watch and "
          f"publish; see docs/security.md to run with keys and tokens\n  Ctrl-C to stop",
          file=sys.stderr, flush=True)
    run_gunicorn(load, s)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import requests

    from .simulator import SwarmSimulator

    url = args.url.rstrip("/") + "/api/v1/events"
    session = requests.Session()
    api_key = args.api_key or load_settings().publish_api_key
    if api_key:
        session.headers["Authorization"] = f"Bearer {api_key}"
    retries = 0

    def send(batch: list[dict[str, Any]]) -> None:
        nonlocal retries
        delay = 0.2
        key = uuid.uuid4().hex  # the same key on every retry: the batch is stored once
        while True:
            try:
                r = session.post(url, json=batch, timeout=10,
                                 headers={"Idempotency-Key": key})
            except requests.RequestException as exc:
                reason = str(exc)
            else:
                if r.status_code == 202:
                    return
                if r.status_code not in (429, 502, 503, 504):
                    raise SystemExit(f"\nrefused by {url}: HTTP {r.status_code} {r.text[:300]}")
                reason = f"HTTP {r.status_code}"
            retries += 1
            print(f"\rretrying in {delay:.1f}s ({reason})" + " " * 20, end="", file=sys.stderr)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def progress(sent: int, elapsed: float) -> None:
        rate = sent / elapsed if elapsed > 0 else 0.0
        print(f"\r{sent} events sent in {elapsed:5.1f}s ({rate:7.1f}/s), {retries} retries",
              end="", file=sys.stderr, flush=True)

    sim = SwarmSimulator(swarms=args.swarms, agents=args.agents, seed=args.seed)
    try:
        sent = sim.run(send, rate=args.rate, duration=args.duration, progress=progress)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    print(f"\ndone: {sent} events", file=sys.stderr)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from .auth import AuthError
    from .eventlog import BackendUnavailable
    from .events import ValidationError
    from .publisher import Publisher

    payload = _publish_payload(args)
    s = _settings(REDIS_URL=args.redis_url)
    try:
        with Publisher(url=args.url, api_key=args.api_key, settings=s) as pub:
            result = pub.publish(payload)
    except ValidationError as exc:
        print(json.dumps({"error": "invalid event(s)", "errors": exc.errors}), file=sys.stderr)
        return 2
    except AuthError as exc:
        print(json.dumps({"error": str(exc), "status": exc.status}), file=sys.stderr)
        return 4
    except BackendUnavailable as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 3
    except SettingsError:
        raise  # main() reports it: configuration error, exit status 2
    except ValueError as exc:
        raise SystemExit(f"publish: {exc}") from None
    print(json.dumps({"accepted": result.accepted, "cursor": result.cursor}))
    return 0


def _publish_payload(args: argparse.Namespace) -> Any:
    """The event(s) ``publish`` was given, or a one-line exit saying what is wrong."""
    if args.file:
        source = "stdin" if args.file == "-" else args.file
        try:
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        except OSError as exc:
            raise SystemExit(f"publish: cannot read --file {source}: "
                             f"{exc.strerror or exc}") from None
    else:
        if not (args.type and args.swarm and args.agent):
            raise SystemExit("publish: give --file, or --type, --swarm, --agent and --data")
        source, text = "--data", args.data or "{}"
    try:
        parsed: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"publish: {source} is not JSON: {exc}") from None
    if args.file:
        return parsed
    return {"type": args.type, "swarm": args.swarm, "agent_id": args.agent, "data": parsed}


class _GaveUp(logging.Handler):
    """Catches the message queue manager's "giving up": its emit() reports nothing else."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.reason: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if "giving up" in record.getMessage():
            detail = getattr(record, "redis_exception", None) or getattr(
                record, "rabbitmq_exception", None)
            self.reason = str(detail or record.getMessage())


def cmd_notify(args: argparse.Namespace) -> int:
    from .app import client_manager

    s = _settings()
    url = check_url("--queue-url", args.queue_url) if args.queue_url else s.queue_url
    if not url:
        raise SystemExit("notify: set MESSAGE_QUEUE_URL or REDIS_URL (or --queue-url)")
    if url.split("://")[0] not in ("redis", "rediss", "unix", "redis+sentinel", "amqp", "amqps"):
        raise SystemExit(f"notify: {url!r} is not a redis:// or amqp:// URL (rediss://, "
                         "unix://, redis+sentinel:// and amqps:// are fine too)")
    failures = _GaveUp()
    logger = logging.getLogger("swarmdash.notify")
    logger.propagate = False
    logger.addHandler(failures)
    manager = client_manager(url, s.message_queue_channel, timeout=s.redis_timeout,
                             write_only=True, logger=logger)
    payload = {"type": "alert", "swarm": "*", "agent_id": "swarmdash-notify",
               "ts": time.time(), "source": "notify",
               "data": {"severity": args.severity, "message": args.message}}
    try:
        manager.emit("system_alert", payload, namespace="/")
    finally:
        logger.removeHandler(failures)
    via = url.split("@")[-1]
    if failures.reason is not None:
        print(f"notify: not sent, cannot publish to {via}: {failures.reason}", file=sys.stderr)
        return 3
    print(json.dumps({"sent": "system_alert", "via": via}))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    import socketio

    from .watch import Watcher

    subscription: dict[str, Any] = {"swarm": args.swarm,
                                    "channels": [c for c in args.channels.split(",") if c]}
    if args.agent_id:
        subscription["agent_id"] = args.agent_id
    transports = [args.transport] if args.transport else None
    token = args.token or load_settings().viewer_token or None
    watcher = Watcher(args.url, subscription, sys.stdout, transports, args.count, token)
    try:
        watcher.run(args.duration)
    except socketio.exceptions.ConnectionError as exc:
        reason = watcher.refused or _reason(exc)
        print(f"watch: cannot connect to {args.url}: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if watcher.refused:
        print(f"watch: refused: {watcher.refused}", file=sys.stderr)
        return 1
    return 0


def _reason(exc: Exception) -> str:
    """The OS's words for a failed connect ("Connection refused"), else the whole message."""
    import re

    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    return found.group(1).strip() if found else str(exc)


def cmd_settings(args: argparse.Namespace) -> int:
    if args.defaults:
        for name, default, doc in describe():
            print(f"# {doc}\n{name}={default}\n")
        return 0
    settings = load_settings()  # validates, like a node at start-up
    for name, value in effective(settings):
        print(f"{name}={value}")
    try:
        check_serving(settings)
    except SettingsError as exc:
        print(f"# a node would refuse to start with these settings: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    from .auth.apikeys import ApiKey, generate_key, key_hash, parse_api_key_entry

    swarms = None if args.all_swarms else frozenset(args.swarm or ())
    if swarms is not None and not swarms:
        raise SystemExit("apikey: give --swarm NAME (repeatable) or --all-swarms")
    key = generate_key()
    scope = "*" if swarms is None else "|".join(sorted(swarms))
    try:
        entry: ApiKey = parse_api_key_entry(f"{args.id}:{key_hash(key)}:{scope}")
    except ValueError as exc:
        raise SystemExit(f"apikey: {exc}") from None
    print("# The key, for the agent (Authorization: Bearer <key>); it is not stored anywhere:")
    print(f"PUBLISH_API_KEY={key}")
    print("# The nodes' entry: add it to API_KEYS (comma-separated), then restart the nodes:")
    print(f"API_KEYS={entry.entry}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from .auth.tokens import TokenError, issue_token, parse_duration, verify_token

    s = load_settings()
    if args.check:
        try:
            viewer = verify_token(args.check, (*s.secret_key_previous, s.secret_key))
        except TokenError as exc:
            print(json.dumps({"valid": False, "reason": exc.reason, "error": exc.detail}))
            return 1
        print(json.dumps({"valid": True, **viewer.describe()}))
        return 0
    check_serving(s)  # a node with these settings must accept what is signed here
    if args.all_swarms == bool(args.swarm):
        raise SystemExit("token: give --swarm NAME (repeatable) or --all-swarms")
    try:
        ttl = parse_duration(args.ttl)
        if ttl > s.viewer_token_max_ttl:
            raise ValueError(f"--ttl {args.ttl} is longer than VIEWER_TOKEN_MAX_TTL "
                             f"({s.viewer_token_max_ttl} s)")
        token = issue_token(s.secret_key, swarms=None if args.all_swarms else args.swarm,
                            ttl=ttl, name=args.name)
    except ValueError as exc:
        raise SystemExit(f"token: {exc}") from None
    scope = "every swarm" if args.all_swarms else ", ".join(sorted(set(args.swarm)))
    until = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(time.time() + ttl))
    print(f"viewer token for {args.name}: {scope}, valid until {until}\n"
          f"sign in: {args.url.rstrip('/')}/login#token={token}", file=sys.stderr)
    print(token)
    return 0


class HelpFormatter(argparse.HelpFormatter):
    """Every flag's help ends with its default, unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if ("default" in text or action.default in (None, False, argparse.SUPPRESS)
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def _command(sub: Any, name: str, help_: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_, description=help_,
                                                     formatter_class=HelpFormatter)
    return parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="swarmdash", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"swarmdash {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _command(sub, "serve", "run one node (settings from the environment/.env)")
    serve.add_argument("--host", help="address to listen on (default: HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT, 8050)")
    serve.add_argument("--async-mode", choices=ASYNC_MODES,
                       help="engine (default: ASYNC_MODE, gevent)")
    serve.set_defaults(func=cmd_serve)

    demo = _command(sub, "demo", "one embedded node + a simulated swarm, nothing else needed")
    demo.add_argument("--host", help="address to listen on (default: HOST, 127.0.0.1)")
    demo.add_argument("--port", type=int, help="port to listen on (default: PORT, 8050)")
    demo.add_argument("--swarms", type=int, default=3, help="simulated swarms")
    demo.add_argument("--agents", type=int, default=50, help="simulated agents in all")
    demo.add_argument("--rate", type=float, default=50.0, help="events per second")
    demo.add_argument("--seed", type=int, help="random seed (default: a new one each run)")
    demo.add_argument("--redis-url", help="use this Redis instead of the embedded log "
                      "(default: none, embedded)")
    demo.set_defaults(func=cmd_demo)

    sim = _command(sub, "simulate", "drive a realistic swarm through the HTTP API")
    sim.add_argument("--url", default="http://127.0.0.1:8050", help="a node or HAProxy")
    sim.add_argument("--swarms", type=int, default=3, help="simulated swarms")
    sim.add_argument("--agents", type=int, default=50, help="simulated agents in all")
    sim.add_argument("--rate", type=float, default=50.0, help="events per second")
    sim.add_argument("--duration", type=float, help="seconds (default: until Ctrl-C)")
    sim.add_argument("--seed", type=int, help="random seed (default: a new one each run)")
    sim.add_argument("--api-key", help="sent as Authorization: Bearer (default: "
                     "PUBLISH_API_KEY)")
    sim.set_defaults(func=cmd_simulate)

    pub = _command(sub, "publish", "publish events straight to Redis, or to a node with --url")
    pub.add_argument("--redis-url", help="the Redis to write to (default: REDIS_URL)")
    pub.add_argument("--url", help="POST to this node (or HAProxy) instead of writing to Redis "
                     "(default: none)")
    pub.add_argument("--api-key", help="the API key (default over --url: PUBLISH_API_KEY; "
                     "none to Redis)")
    pub.add_argument("--file", "-f", help="JSON file with an event or a list ('-' = stdin; "
                     "default: build one event from --type, --swarm, --agent, --data)")
    pub.add_argument("--type", choices=("agent", "task", "metric", "log", "alert"),
                     help="the event's type (no default)")
    pub.add_argument("--swarm", help="the event's swarm (no default)")
    pub.add_argument("--agent", help="the event's agent_id (no default)")
    pub.add_argument("--data", help="the event's data as JSON (default: {})")
    pub.set_defaults(func=cmd_publish)

    notify = _command(sub, "notify", "send a system_alert to every connected dashboard")
    notify.add_argument("message", help="the alert's text")
    notify.add_argument("--severity", default="warning",
                        choices=("info", "warning", "error", "critical"), help="its severity")
    notify.add_argument("--queue-url", help="default: MESSAGE_QUEUE_URL, else REDIS_URL")
    notify.set_defaults(func=cmd_notify)

    watch = _command(sub, "watch", "print a live subscription in the terminal, resuming from "
                     "its cursor after every reconnect")
    watch.add_argument("--url", default="http://127.0.0.1:8050", help="a node or HAProxy")
    watch.add_argument("--swarm", default="*", help="a swarm, or * for every swarm the token "
                       "allows")
    watch.add_argument("--channels", default="agent,task,metric,log",
                       help="comma-separated channels")
    watch.add_argument("--agent-id", help="only this agent (default: every agent)")
    watch.add_argument("--transport", choices=("websocket", "polling"),
                       help="default: long-polling, then upgrade to websocket")
    watch.add_argument("--count", type=int, help="stop after this many events "
                       "(default: no limit)")
    watch.add_argument("--token", help="viewer token (default: VIEWER_TOKEN)")
    watch.add_argument("--duration", type=float, help="stop after this many seconds "
                       "(default: until Ctrl-C)")
    watch.set_defaults(func=cmd_watch)

    from .cluster.cli import add_parser as add_cluster

    add_cluster(sub, HelpFormatter)

    env = _command(sub, "settings", "validate the settings in effect and print them "
                   "(secrets masked); exit status 2 if a node would refuse them")
    env.add_argument("--defaults", action="store_true",
                     help="print every setting's default instead, in .env format")
    env.set_defaults(func=cmd_settings)

    key = _command(sub, "apikey", "make a new API key for an agent: prints the key and its "
                   "API_KEYS entry (a hash)")
    key.add_argument("--id", required=True, help="the key's name, e.g. the agent fleet")
    key.add_argument("--swarm", action="append", help="a swarm the key may publish to "
                     "(repeatable; no default: give it or --all-swarms)")
    key.add_argument("--all-swarms", action="store_true", help="the key may publish anywhere")
    key.set_defaults(func=cmd_apikey)

    tok = _command(sub, "token", "issue a viewer token (signed with SECRET_KEY) and print its "
                   "sign-in link; --check verifies one")
    tok.add_argument("--swarm", action="append", help="a swarm the viewer may see "
                     "(repeatable; no default: give it or --all-swarms)")
    tok.add_argument("--all-swarms", action="store_true", help="the viewer may see every swarm")
    tok.add_argument("--ttl", default="8h", help="lifetime: 30m, 8h, 7d")
    tok.add_argument("--name", default="viewer", help="who the token is for (shown, logged)")
    tok.add_argument("--url", default="http://127.0.0.1:8050",
                     help="the dashboard's address, for the sign-in link")
    tok.add_argument("--check", metavar="TOKEN",
                     help="verify TOKEN with the settings in effect (SECRET_KEY and "
                     "SECRET_KEY_PREVIOUS) and print what it grants (default: issue one)")
    tok.set_defaults(func=cmd_token)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except SettingsError as exc:
        print(f"swarmdash: configuration error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
