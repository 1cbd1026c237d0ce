"""Typed settings: the only module that reads the environment.

Every variable has a default, is listed in ``.env.example`` and ``docs/configuration.md``,
and is validated by :func:`load_settings`; a bad value fails start-up with a
:class:`SettingsError` naming the variable.  Names from the original SwarmBot
deployment guide (``WEBSOCKET_*``, ``FLASK_DEBUG``, ``SOCKETIO_DEBUG``, ``SECRET_KEY``,
``CORS_ALLOWED_ORIGINS``) keep their meaning.
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit

ASYNC_MODES = ("gevent", "eventlet", "threading")
DEFAULT_SECRET_KEY = "dev-insecure-change-me"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _section(title: str) -> Callable[..., Any]:
    """The field maker of one section: ``title`` heads the section in the reference docs."""
    def env(name: str, default: Any, doc: str, **meta: Any) -> Any:
        metadata = {"env": name, "doc": doc, "section": title, **meta}
        return field(default=default, metadata=metadata)
    return env


# The sections of the reference (docs/configuration.md, .env.example), in their order.
_guide = _section("Names from the original deployment guide")
_auth = _section("Authentication")
_node = _section("Node")
_redis = _section("Redis and the message queue")
_sentinel = _section("Redis replication (Sentinel)")
_registry = _section("Cluster registry")
_outage = _section("Redis outages")
_relay = _section("Batching and relay")
_legacy = _section("Clients that never subscribe (the original SwarmBot dashboard)")
_limits = _section("Limits")


@dataclass(frozen=True)
class Settings:
    websocket_enabled: bool = _guide(
        "WEBSOCKET_ENABLED", True, "Offer the websocket transport (false: long-polling only).")
    websocket_compression: str = _guide(
        "WEBSOCKET_COMPRESSION", "shared",
        "permessage-deflate on websockets: shared (a room's messages compressed once, as "
        "one stream, for all its clients), per-client (a compression context per "
        "connection), off.",
        choices=("shared", "per-client", "off"))
    websocket_ping_interval: int = _guide(
        "WEBSOCKET_PING_INTERVAL", 25, "Engine.IO ping interval, seconds.", min=1, max=3600)
    websocket_ping_timeout: int = _guide(
        "WEBSOCKET_PING_TIMEOUT", 60, "Engine.IO ping timeout, seconds.", min=1, max=3600)
    websocket_max_reconnect_attempts: int = _guide(
        "WEBSOCKET_MAX_RECONNECT_ATTEMPTS", 10,
        "Reconnect attempts a dashboard makes before it gives up (0 = forever).", min=0, max=10000)
    websocket_fallback_threshold: int = _guide(
        "WEBSOCKET_FALLBACK_THRESHOLD", 5,
        "Failed reconnects after which the dashboard switches to HTTP polling.", min=1, max=10000)
    websocket_reconnect_delay_ms: int = _guide(
        "WEBSOCKET_RECONNECT_DELAY_MS", 1000,
        "First delay of a dashboard's reconnects, ms (doubles, with jitter).", min=10,
        max=600_000)
    websocket_reconnect_delay_max_ms: int = _guide(
        "WEBSOCKET_RECONNECT_DELAY_MAX_MS", 5000, "Longest delay between reconnects, ms.",
        min=10, max=600_000)
    fallback_poll_interval_ms: int = _guide(
        "FALLBACK_POLL_INTERVAL_MS", 1000,
        "How often a dashboard in polling fallback calls GET /api/v1/events, ms.", min=100,
        max=600_000)
    fallback_probe_interval_ms: int = _guide(
        "FALLBACK_PROBE_INTERVAL_MS", 15000,
        "How often a dashboard that gave up reconnecting probes the socket again, ms.",
        min=100, max=3_600_000)
    flask_debug: bool = _guide(
        "FLASK_DEBUG", False,
        "Development mode: skips the production checks (SECRET_KEY...); only with a loopback "
        "HOST. Never starts Werkzeug's debugger.")
    socketio_debug: bool = _guide(
        "SOCKETIO_DEBUG", False,
        "Log every Socket.IO and Engine.IO packet (viewer tokens masked).")
    secret_key: str = _guide(
        "SECRET_KEY", DEFAULT_SECRET_KEY,
        "Signs viewer tokens (and Flask's cookies); 32+ random characters, the same on every "
        "node. Required in production.", secret=True)
    cors_allowed_origins: tuple[str, ...] = _guide(
        "CORS_ALLOWED_ORIGINS", (),
        "Comma-separated origins allowed besides the node's own; empty = same origin only; "
        "* = any (refused in production).")

    allowed_hosts: tuple[str, ...] = _guide(
        "ALLOWED_HOSTS", (),
        "Comma-separated Host names the node answers (* = any; .example.com = it and its "
        "subdomains); others get 400 (DNS rebinding). Empty: with auth off only IP "
        "addresses, localhost and this host's names; with auth on any name.")

    auth_disabled: bool = _auth(
        "AUTH_DISABLED", False,
        "Switch API keys and viewer tokens off: anyone may publish and watch (local demo "
        "only; the node warns).")
    api_keys: tuple[str, ...] = _auth(
        "API_KEYS", (),
        "API keys agents publish with: entries id:<sha256 hex of the key>:<swarm|swarm or *>, "
        "separated by commas; `swarmdash apikey` makes one.")
    secret_key_previous: tuple[str, ...] = _auth(
        "SECRET_KEY_PREVIOUS", (),
        "Former SECRET_KEYs, comma-separated: viewer tokens they signed stay valid until they "
        "expire (rotation).", secret=True)
    viewer_token_max_ttl: int = _auth(
        "VIEWER_TOKEN_MAX_TTL", 30 * 86400,
        "Longest lifetime `swarmdash token` issues, seconds (also how long to keep a key in "
        "SECRET_KEY_PREVIOUS).", min=60, max=366 * 86400)
    publish_api_key: str = _auth(
        "PUBLISH_API_KEY", "",
        "The API key `swarmdash simulate`, `swarmdash publish --url` and Publisher send.",
        secret=True)
    viewer_token: str = _auth(
        "VIEWER_TOKEN", "", "The viewer token `swarmdash watch` sends (`swarmdash token`).",
        secret=True)

    node_id: str = _node("NODE_ID", "", "Name of this node (default: <hostname>:<port>).")
    host: str = _node("HOST", "127.0.0.1", "Address the node listens on.")
    node_address: str = _node(
        "NODE_ADDRESS", "",
        "host:port other processes reach this node at (default: HOST:PORT, or this host's "
        "address when HOST is 0.0.0.0); published in the cluster registry.")
    port: int = _node("PORT", 8050, "Port the node listens on.", min=1, max=65535)
    async_mode: str = _node(
        "ASYNC_MODE", "gevent", "Engine of `swarmdash serve`: gevent, eventlet or threading.",
        choices=ASYNC_MODES)
    worker_connections: int = _node(
        "WORKER_CONNECTIONS", 20000, "gunicorn worker_connections (gevent).", min=10,
        max=1_000_000)
    graceful_timeout: int = _node(
        "GRACEFUL_TIMEOUT", 10, "Seconds a stopping node lets open connections finish.",
        min=0, max=3600)
    log_level: str = _node(
        "LOG_LEVEL", "info", "debug, info, warning or error.",
        choices=("debug", "info", "warning", "error"))

    redis_url: str = _redis(
        "REDIS_URL", "",
        "Redis for the event stream and state: redis://, rediss://, unix:// or "
        "redis+sentinel://[user:password@]host1:port1,host2:port2/<db>/<service> (follows the "
        "primary Sentinel names); empty = embedded in-memory log.")
    message_queue_url: str = _redis(
        "MESSAGE_QUEUE_URL", "",
        "Socket.IO message queue, redis://, redis+sentinel:// or amqp://; empty = REDIS_URL "
        "(none when embedded).")
    message_queue_channel: str = _redis(
        "MESSAGE_QUEUE_CHANNEL", "swarmdash", "Channel/exchange name on the message queue.")
    redis_key_prefix: str = _redis("REDIS_KEY_PREFIX", "swarmdash", "Prefix of every Redis key.")
    redis_timeout: float = _redis(
        "REDIS_TIMEOUT", 2.0, "Seconds before a Redis command counts as failed.", min=0.05,
        max=60)
    redis_max_connections: int = _redis(
        "REDIS_MAX_CONNECTIONS", 50, "Connections a node opens to Redis at most (a pool).",
        min=2, max=10000)
    stream_maxlen: int = _redis(
        "STREAM_MAXLEN", 100_000, "Approximate number of events the stream keeps for resume.",
        min=100, max=100_000_000)
    idempotency_ttl: int = _redis(
        "IDEMPOTENCY_TTL", 600,
        "Seconds an Idempotency-Key is remembered: a retried batch is not stored twice.",
        min=0, max=86400 * 7)
    idempotency_max_keys: int = _redis(
        "IDEMPOTENCY_MAX_KEYS", 50_000,
        "Idempotency-Keys remembered per API key at most: beyond it the oldest is forgotten "
        "before IDEMPOTENCY_TTL (bounds their memory).", min=1, max=10_000_000)
    task_history: int = _redis(
        "TASK_HISTORY", 200, "Finished tasks per swarm kept in the snapshot.", min=0,
        max=100_000)

    ingest_min_replicas: int = _sentinel(
        "INGEST_MIN_REPLICAS", 0,
        "Replicas that must hold a batch before ingest answers 202 (WAIT); relays then deliver "
        "only entries that many replicas hold. 0 = no wait; 1 recommended with Sentinel.",
        min=0, max=100)
    ingest_replica_timeout_ms: int = _sentinel(
        "INGEST_REPLICA_TIMEOUT_MS", 1000,
        "How long ingest waits for INGEST_MIN_REPLICAS acknowledgements before it answers 503 "
        "with Retry-After, ms.", min=10, max=60_000)

    heartbeat_interval: float = _registry(
        "HEARTBEAT_INTERVAL", 2.0, "Seconds between two heartbeats of a node in the registry.",
        min=0.1, max=300)
    heartbeat_ttl: float = _registry(
        "HEARTBEAT_TTL", 10.0,
        "Seconds after its last heartbeat a node drops out of /api/v1/cluster.", min=0.5,
        max=3600)
    target_retention: int = _registry(
        "TARGET_RETENTION", 600,
        "Seconds a node that stopped heartbeating stays a Prometheus target (so `up == 0` "
        "shows it down).", min=0, max=86400 * 7)

    redis_outage_grace: float = _outage(
        "REDIS_OUTAGE_GRACE", 30.0,
        "Seconds a Redis outage that every node sees may last with the nodes kept in the "
        "proxy's pool and their sessions open (ingest answers 503 meanwhile); past it /health "
        "answers 503. A node that alone loses Redis answers 503 at once.", min=0, max=3600)
    store_check_interval: float = _outage(
        "STORE_CHECK_INTERVAL", 0.5,
        "Seconds between two rounds of a node's store watch (what /health reports): a Redis "
        "ping, skipped while the relay's reads of the log are answered (within half of it).",
        min=0.05, max=60)
    peer_check_timeout: float = _outage(
        "PEER_CHECK_TIMEOUT", 1.0,
        "Seconds a node without Redis waits for a peer to say whether it reaches Redis.",
        min=0.05, max=60)

    batch_window_agent_ms: int = _relay(
        "BATCH_WINDOW_AGENT_MS", 200, "Batch window of agent updates, ms.", min=0, max=60000)
    batch_window_task_ms: int = _relay(
        "BATCH_WINDOW_TASK_MS", 200, "Batch window of task updates, ms.", min=0, max=60000)
    batch_window_metric_ms: int = _relay(
        "BATCH_WINDOW_METRIC_MS", 500, "Batch window of metrics, ms.", min=0, max=60000)
    batch_window_log_ms: int = _relay(
        "BATCH_WINDOW_LOG_MS", 1000, "Batch window of logs, ms.", min=0, max=60000)
    max_batch_size: int = _relay(
        "MAX_BATCH_SIZE", 500, "Events in one batch; a full batch is sent at once.", min=1,
        max=100_000)
    coalesce_agent_updates: bool = _relay(
        "COALESCE_AGENT_UPDATES", True,
        "Keep only the latest update of an agent inside one batch window.")
    relay_block_ms: int = _relay(
        "RELAY_BLOCK_MS", 1000, "How long one XREAD of the relay blocks, ms.", min=10,
        max=60000)
    relay_read_count: int = _relay(
        "RELAY_READ_COUNT", 1000, "Events one XREAD of the relay takes at most.", min=1,
        max=100_000)
    relay_retry_max_s: float = _relay(
        "RELAY_RETRY_MAX_S", 5.0, "Longest back-off of the relay while Redis is away, s.",
        min=0.1, max=300)
    flush_tick_ms: int = _relay(
        "FLUSH_TICK_MS", 20,
        "Resolution of the batch timers, ms: a batch goes out at the first point of this grid "
        "after its window ends.", min=1, max=1000)
    replay_limit: int = _relay(
        "REPLAY_LIMIT", 20000,
        "Most events replayed on a resume; beyond it (or beyond MAX_QUEUE_BYTES of events) "
        "the client gets a snapshot (gap).",
        min=1, max=10_000_000)
    replay_scan_limit: int = _relay(
        "REPLAY_SCAN_LIMIT", 20_000,
        "Most stream entries one resume reads, matching its filter or not; beyond it the "
        "client gets a snapshot (gap). At least REPLAY_LIMIT.", min=1, max=10_000_000)

    default_subscription: str = _legacy(
        "DEFAULT_SUBSCRIPTION", "all",
        "What a client that sends no subscribe within DEFAULT_SUBSCRIPTION_AFTER_MS gets: "
        "all (every swarm its token allows, every channel, as the original dashboard "
        "expects) or none.", choices=("all", "none"))
    default_subscription_after_ms: int = _legacy(
        "DEFAULT_SUBSCRIPTION_AFTER_MS", 2000,
        "How long a new client has to send its own subscribe before it gets "
        "DEFAULT_SUBSCRIPTION, ms.", min=10, max=600_000)

    max_queue_size: int = _limits(
        "MAX_QUEUE_SIZE", 1000, "Writes waiting for one client before it is dropped.",
        min=1, max=1_000_000)
    max_queue_bytes: int = _limits(
        "MAX_QUEUE_BYTES", 16 * 1024 * 1024,
        "Bytes waiting for one client before it is dropped.", min=4096, max=1 << 34)
    slow_consumer_grace_s: float = _limits(
        "SLOW_CONSUMER_GRACE_S", 5.0,
        "A client over MAX_QUEUE_SIZE or MAX_QUEUE_BYTES that takes nothing for this long "
        "is dropped.", min=1.0, max=3600.0)
    max_room_size: int = _limits(
        "MAX_ROOM_SIZE", 10000, "Clients of one node in one subscription room.", min=1,
        max=1_000_000)
    max_subscriptions: int = _limits(
        "MAX_SUBSCRIPTIONS_PER_CLIENT", 20, "Subscriptions one client may hold.", min=1,
        max=10000)
    subscribe_rate_limit: float = _limits(
        "SUBSCRIBE_RATE_LIMIT", 1.0,
        "Subscribes per second one connection may make beyond SUBSCRIBE_BURST; more are "
        "refused (rate_limited); 0 = unlimited.", min=0, max=100_000)
    subscribe_burst: int = _limits(
        "SUBSCRIBE_BURST", 20,
        "Subscribes one connection may make at once (the token bucket's size).", min=1,
        max=100_000)
    max_events_per_request: int = _limits(
        "MAX_EVENTS_PER_REQUEST", 1000, "Events in one ingest request.", min=1, max=1_000_000)
    max_payload_bytes: int = _limits(
        "MAX_PAYLOAD_BYTES", 1_000_000,
        "Bytes of one HTTP request body and of one Socket.IO message.", min=1024,
        max=100_000_000)
    max_event_bytes: int = _limits(
        "MAX_EVENT_BYTES", 65536, "Bytes of one encoded event.", min=256, max=10_000_000)
    events_page_limit: int = _limits(
        "EVENTS_PAGE_LIMIT", 1000, "Most events one GET /api/v1/events returns.", min=1,
        max=100_000)
    ingest_rate_limit: float = _limits(
        "INGEST_RATE_LIMIT", 10000.0,
        "Events per second one API key (or, with auth off, all publishers together) may "
        "ingest, shared by every node; 0 = unlimited.", min=0, max=10_000_000)
    ingest_burst: int = _limits(
        "INGEST_BURST", 20000,
        "Events a key may send at once above INGEST_RATE_LIMIT (the token bucket's size).",
        min=1, max=100_000_000)
    max_clients_per_node: int = _limits(
        "MAX_CLIENTS_PER_NODE", 15000,
        "Socket.IO clients one node accepts; beyond it a connect is refused (node_full). "
        "Keep it below WORKER_CONNECTIONS so HTTP requests still get through.", min=1,
        max=1_000_000)
    max_pending_connections: int = _limits(
        "MAX_PENDING_CONNECTIONS", 4000,
        "Connections one node holds that have not completed the Socket.IO connect yet "
        "(room for a burst of reconnects); beyond it a new one is refused (401). "
        "MAX_CLIENTS_PER_NODE plus this stays below WORKER_CONNECTIONS.", min=1, max=1_000_000)
    handshake_timeout: float = _limits(
        "HANDSHAKE_TIMEOUT", 20.0,
        "Seconds a connection may stay open without completing the Socket.IO connect (with "
        "a valid viewer token); then the node closes it. A busy node may take seconds to "
        "answer a burst of connects.", min=0.5, max=300)
    max_agents_per_swarm: int = _limits(
        "MAX_AGENTS_PER_SWARM", 1000,
        "Agents the state of one swarm holds; a batch that would add one more is refused "
        "(422).", min=1, max=1_000_000)
    max_swarms: int = _limits(
        "MAX_SWARMS", 1000,
        "Swarms the event log knows (every swarm an event was ever sent for); a batch for "
        "one more is refused (422).", min=1, max=1_000_000)
    max_open_tasks_per_swarm: int = _limits(
        "MAX_OPEN_TASKS_PER_SWARM", 2000,
        "Queued or running tasks the state of one swarm holds; a batch that would open one "
        "more is refused (422).", min=1, max=1_000_000)

    # derived from the settings above
    @property
    def node_name(self) -> str:
        return self.node_id or f"{socket.gethostname()}:{self.port}"

    @property
    def advertised_address(self) -> str:
        """host:port at which Prometheus, HAProxy and other nodes reach this node."""
        if self.node_address:
            return self.node_address
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            try:
                host = socket.gethostbyname(socket.gethostname())
            except OSError:
                host = socket.gethostname()
        return f"{host}:{self.port}"

    @property
    def queue_url(self) -> str:
        return self.message_queue_url or self.redis_url

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    @property
    def batch_windows(self) -> dict[str, float]:
        """Batch window per channel, seconds."""
        return {
            "agent": self.batch_window_agent_ms / 1000,
            "task": self.batch_window_task_ms / 1000,
            "metric": self.batch_window_metric_ms / 1000,
            "log": self.batch_window_log_ms / 1000,
        }

    def replace(self, **changes: Any) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file: ``NAME=value`` lines, ``#`` comments, optional quotes."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise SettingsError(f"{path}:{number}: expected NAME=value, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _to_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("expected true or false")


def _to_origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip() for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin == "*":
            continue
        parts = urlparse(origin)
        if not parts.scheme or not parts.netloc or parts.path or parts.query:
            raise ValueError(f"{origin!r} is not an origin like https://dash.example.com")
    return origins


def _to_list(raw: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in raw.split(",") if v.strip())


_HOST_NAME = re.compile(r"\*|\.?[a-z0-9]([a-z0-9.-]*[a-z0-9])?|[0-9a-f:.]+")


def _to_hosts(raw: str) -> tuple[str, ...]:
    hosts = tuple(h.lower() for h in _to_list(raw))
    for host in hosts:
        if not _HOST_NAME.fullmatch(host):
            raise ValueError(f"{host!r} is not a host name like dash.example.com (no port, "
                             "no scheme)")
    return hosts


def _to_api_keys(raw: str) -> tuple[str, ...]:
    from .auth.apikeys import parse_api_keys, split_entries

    keys = parse_api_keys(split_entries(raw))
    return tuple(k.entry for k in keys)


def _to_url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        raw = raw.strip()
        if not raw:
            return raw
        parts = urlparse(raw)
        if parts.scheme not in schemes:
            raise ValueError(f"expected a {' or '.join(s + '://' for s in schemes)} URL")
        if raw.startswith(SENTINEL_SCHEME + "://"):
            parse_sentinel_url(raw)  # raises ValueError naming what is wrong
            return raw
        if parts.scheme == "unix" and not parts.path:
            raise ValueError("names no socket path (unix:///run/redis.sock)")
        if parts.scheme != "unix" and not parts.hostname:
            # redis-py would quietly read it as localhost:6379
            raise ValueError(f"names no host ({parts.scheme}://HOST:PORT)")
        return raw
    return convert


SENTINEL_SCHEME = "redis+sentinel"
REDIS_SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME)


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL: where the sentinels are and what they watch."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Parse ``redis+sentinel://[user:password@]host1:port1,host2:port2,.../<db>/<service>``.

    The form python-socketio's RedisManager reads; unlike it, the service name is required
    (the nodes and the message queue must follow the same primary) and every part is checked.
    """
    parts = urlparse(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"expected a {SENTINEL_SCHEME}:// URL")
    hosts = parts.netloc.rsplit("@", 1)[-1]
    sentinels = []
    for item in hosts.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"sentinel {item!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    path = parts.path.split("/")
    db_text = path[1] if len(path) > 1 else ""
    service = path[2] if len(path) > 2 else ""
    if not db_text.isdigit():
        raise ValueError("expected /<db>/<service_name> after the sentinels, e.g. /0/swarmdash")
    if not service or len(path) > 3:
        raise ValueError("expected the Sentinel service name after the db, e.g. /0/swarmdash")
    return SentinelUrl(tuple(sentinels), service, int(db_text),
                       unquote(parts.username) if parts.username else None,
                       unquote(parts.password) if parts.password else None)


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "REDIS_URL": _to_url(REDIS_SCHEMES),
    "MESSAGE_QUEUE_URL": _to_url((*REDIS_SCHEMES, "amqp", "amqps")),
    "CORS_ALLOWED_ORIGINS": _to_origins,
    "API_KEYS": _to_api_keys,
    "SECRET_KEY_PREVIOUS": _to_list,
    "ALLOWED_HOSTS": _to_hosts,
}


def check_url(flag: str, raw: str) -> str:
    """``raw`` checked as ``MESSAGE_QUEUE_URL`` would be; :class:`SettingsError` names ``flag``."""
    try:
        return _CONVERTERS["MESSAGE_QUEUE_URL"](raw)
    except ValueError as exc:
        raise SettingsError(f"{flag}={raw!r}: {exc}") from None


def _convert(f: Any, raw: str) -> Any:
    name = f.metadata["env"]
    if name in _CONVERTERS:
        return _CONVERTERS[name](raw)
    kind = type(f.default)
    if kind is bool:
        return _to_bool(raw)
    if kind is int:
        return int(raw.strip())
    if kind is float:
        value = float(raw.strip())
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value
    return raw.strip()


def _read_secret_file(variable: str, path: str) -> str:
    """The value of ``<NAME>_FILE``: the file's text without its final newline (Docker and
    compose secrets are files under /run/secrets)."""
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise SettingsError(f"{variable}={path!r}: {exc.strerror or exc}") from None


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env",
    overrides: Mapping[str, str] | None = None,
) -> Settings:
    """Build and validate settings from ``environ`` (default ``os.environ``) over a ``.env`` file.

    Real environment variables win over the file, as with docker-compose and systemd;
    ``overrides`` (variable -> text, e.g. from command-line flags) win over both and are
    checked the same way. ``<NAME>_FILE`` gives a setting's value as the content of a file
    (a Docker secret) when ``<NAME>`` itself is not set.
    """
    env = os.environ if environ is None else environ
    source: dict[str, str] = {}
    env_path = Path(env.get("SWARMDASH_ENV_FILE", env_file)) if env_file else None
    if env_path and env_path.is_file():
        source.update(read_env_file(env_path))
    source.update(env)
    source.update(overrides or {})

    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = f.metadata["env"]
        if name not in source and f"{name}_FILE" in source:
            source[name] = _read_secret_file(f"{name}_FILE", source[f"{name}_FILE"])
        if name not in source:
            continue
        raw = source[name]
        try:
            value = _convert(f, raw)
        except ValueError as exc:
            raise SettingsError(f"{name}={raw!r}: {exc}") from None
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise SettingsError(f"{name}={raw!r}: must be between {lo} and {hi}")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise SettingsError(f"{name}={raw!r}: must be one of {', '.join(choices)}")
        values[f.name] = value
    settings = Settings(**values)
    _check_consistency(settings)
    return settings


def _check_consistency(s: Settings) -> None:
    if s.websocket_reconnect_delay_max_ms < s.websocket_reconnect_delay_ms:
        raise SettingsError(
            f"WEBSOCKET_RECONNECT_DELAY_MAX_MS={s.websocket_reconnect_delay_max_ms} is below "
            f"WEBSOCKET_RECONNECT_DELAY_MS={s.websocket_reconnect_delay_ms}")
    if s.heartbeat_ttl <= s.heartbeat_interval:
        raise SettingsError(
            f"HEARTBEAT_TTL={s.heartbeat_ttl:g} must be longer than "
            f"HEARTBEAT_INTERVAL={s.heartbeat_interval:g}, or live nodes would flicker out")
    if s.ingest_rate_limit and s.ingest_burst < s.max_events_per_request:
        raise SettingsError(
            f"INGEST_BURST={s.ingest_burst} is below MAX_EVENTS_PER_REQUEST="
            f"{s.max_events_per_request}: a full request could never be accepted")
    if s.max_clients_per_node + s.max_pending_connections >= s.worker_connections:
        raise SettingsError(
            f"MAX_CLIENTS_PER_NODE={s.max_clients_per_node} plus MAX_PENDING_CONNECTIONS="
            f"{s.max_pending_connections} must be below WORKER_CONNECTIONS="
            f"{s.worker_connections}, or the HTTP API and health checks starve when it is full")
    if s.replay_scan_limit < s.replay_limit:
        raise SettingsError(
            f"REPLAY_SCAN_LIMIT={s.replay_scan_limit} is below REPLAY_LIMIT={s.replay_limit}: "
            "a resume could never replay REPLAY_LIMIT events")
    if s.ingest_min_replicas and s.embedded:
        raise SettingsError(
            f"INGEST_MIN_REPLICAS={s.ingest_min_replicas} needs REDIS_URL: the embedded log "
            "has no replicas to wait for")
    if s.message_queue_url and s.embedded:
        raise SettingsError(
            "MESSAGE_QUEUE_URL is set but REDIS_URL is empty: a multi-node setup needs the "
            "shared Redis event stream; set REDIS_URL too")


#: SECRET_KEY values that are not secrets: empty, the built-in one and the guides' placeholders.
PLACEHOLDER_SECRET_KEYS = frozenset({
    "", DEFAULT_SECRET_KEY, "change-me", "changeme", "change-me-in-production",
    "your-secret-key", "your-secret-key-here", "secret", "secret-key", "replace-me"})
#: The only HOSTs a node in FLASK_DEBUG mode may listen on.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
#: A SECRET_KEY shorter than this is refused in production (32 characters, e.g. token_hex(16)).
MIN_SECRET_KEY_LENGTH = 32
#: A SECRET_KEY whose estimated entropy is below this many bits is refused in production:
#: 'a' * 32 is long enough but guessable. A random hex key of 32 characters scores above 100.
MIN_SECRET_KEY_BITS = 80


def estimated_bits(key: str) -> float:
    """A key's entropy as its length times the Shannon entropy of its characters: an upper
    bound for a key a person made up, a fair estimate for a random one."""
    if not key:
        return 0.0
    counts = Counter(key)
    per_char = sum(n / len(key) * math.log2(len(key) / n) for n in counts.values())
    return per_char * len(key)


def _check_secret(name: str, key: str) -> None:
    if key.strip().lower() in PLACEHOLDER_SECRET_KEYS:
        raise SettingsError(
            f"{name} is missing or a placeholder: set 32+ random characters of your own "
            "(python3 -c 'import secrets; print(secrets.token_hex(32))'); FLASK_DEBUG=true "
            "runs without one, for development only")
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise SettingsError(
            f"{name} is {len(key)} characters, fewer than "
            f"{MIN_SECRET_KEY_LENGTH}: too short to sign viewer tokens safely")
    bits = estimated_bits(key)
    if bits < MIN_SECRET_KEY_BITS:
        raise SettingsError(
            f"{name} has about {bits:.0f} bits of entropy, fewer than {MIN_SECRET_KEY_BITS}: "
            "too easy to guess; use random characters "
            "(python3 -c 'import secrets; print(secrets.token_hex(32))')")


def check_serving(s: Settings) -> None:
    """What a node refuses to serve with in production (FLASK_DEBUG=false); raises
    :class:`SettingsError`. Run at every node's start, and by ``swarmdash settings``.

    Every key in SECRET_KEY_PREVIOUS passes the checks of SECRET_KEY: a node accepts the
    tokens each of them signed."""
    if s.flask_debug:
        if s.host.strip("[]").lower() not in LOOPBACK_HOSTS:
            raise SettingsError(
                f"FLASK_DEBUG=true skips the production checks (SECRET_KEY among them): only "
                f"on a loopback HOST ({', '.join(sorted(LOOPBACK_HOSTS))}), not HOST={s.host}")
        return
    _check_secret("SECRET_KEY", s.secret_key)
    for i, previous in enumerate(s.secret_key_previous, 1):
        _check_secret(f"SECRET_KEY_PREVIOUS (key {i})", previous)
    if "*" in s.cors_allowed_origins:
        raise SettingsError(
            "CORS_ALLOWED_ORIGINS=* lets any web site's pages use this node: list the "
            "dashboard's origins instead (https://dash.example.com)")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


#: Query parameters of a URL that carry a credential (redis-py reads ``password`` and
#: ``username`` from the query as well as from the userinfo).
_CREDENTIAL_PARAM = re.compile(r"pass|secret|token|key|auth|cred|user", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` with its userinfo and every credential-like query value replaced by ****."""
    parts = urlsplit(url.strip())
    if not parts.scheme:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "****@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        f"{name}=****" if _CREDENTIAL_PARAM.search(name) and value else
        (f"{name}={value}" if sep else name)
        for name, sep, value in (item.partition("=") for item in parts.query.split("&") if item))
    return (f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
            + ("#****" if parts.fragment else ""))


def effective(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value in effect) for every setting; secrets and URL passwords masked."""
    rows = []
    for f in fields(Settings):
        value = _text(getattr(settings, f.name))
        if f.metadata.get("secret") and value:
            value = "****"
        elif "://" in value:  # a list of URLs splits before each scheme (a sentinel URL's
            # host list has commas of its own)
            value = ",".join(mask_url(v) for v in re.split(r",(?=[A-Za-z][\w+.-]*://)", value))
        rows.append((f.metadata["env"], value))
    return rows


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting: feeds docs and ``.env.example``."""
    return [(f.metadata["env"], _text(f.default), f.metadata["doc"]) for f in fields(Settings)]
