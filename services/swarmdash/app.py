"""create_app(settings): wiring only; the handlers live in api.py and sockets.py."""

from __future__ import annotations

import logging
from typing import Any

import socketio as socketio_lib
from flask import Flask, render_template
from flask_socketio import SocketIO

from . import codec, cors, hosts, metrics, patches, sockets
from .api import answer_health_first, api
from .auth import web as auth_web
from .auth.config import AuthConfig
from .auth.origins import OriginPolicy
from .backends import open_backends
from .eventlog import EventLog
from .node import VERSION, Node
from .redact import packet_logger
from .redisconn import manager_options
from .relay import Relay
from .replication import ReplicationMonitor
from .settings import PLACEHOLDER_SECRET_KEYS, Settings, check_serving
from .storewatch import STORE_STATUS_EVENT
from .watchdog import SlowConsumerWatchdog

log = logging.getLogger("swarmdash")


def client_manager(url: str, channel: str, *, timeout: float = 2.0,
                   write_only: bool = False, logger: Any = None) -> Any:
    """The Socket.IO message queue (None without a URL): Redis pub/sub or AMQP via kombu.

    Built here rather than with ``message_queue=`` so its connection options are ours.
    """
    if not url:
        return None
    if url.startswith(("amqp://", "amqps://")):
        return socketio_lib.KombuManager(url, channel=channel, write_only=write_only,
                                         logger=logger)
    url, options = manager_options(url, timeout)  # redis+sentinel:// follows the primary
    return socketio_lib.RedisManager(url, channel=channel, write_only=write_only,
                                     logger=logger, redis_options=options)


def _cors(settings: Settings) -> Any:
    """Socket.IO's origin check: the node's own origin and CORS_ALLOWED_ORIGINS."""
    return OriginPolicy(settings.cors_allowed_origins).socketio


def create_app(settings: Settings, *, async_mode: str = "threading",
               event_log: EventLog | None = None) -> Flask:
    """Build one node. ``async_mode`` is chosen by the entrypoint (wsgi.py or the CLI)."""
    check_serving(settings)  # production refusals: a placeholder SECRET_KEY, CORS *
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key, DEBUG=settings.flask_debug,
                      MAX_CONTENT_LENGTH=settings.max_payload_bytes)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    socketio = SocketIO(
        app,
        async_mode=async_mode,
        json=codec,  # orjson for every packet (a room's batch is encoded once)
        client_manager=client_manager(settings.queue_url, settings.message_queue_channel,
                                      timeout=settings.redis_timeout),
        cors_allowed_origins=_cors(settings),
        ping_interval=settings.websocket_ping_interval,
        ping_timeout=settings.websocket_ping_timeout,
        max_http_buffer_size=settings.max_payload_bytes,
        transports=["polling", "websocket"] if settings.websocket_enabled else ["polling"],
        # SOCKETIO_DEBUG: every packet logged, viewer tokens masked (redact.py)
        logger=packet_logger("socketio") if settings.socketio_debug else False,
        engineio_logger=packet_logger("engineio") if settings.socketio_debug else False,
    )
    # whole frames, compressed once; under gevent, websockets without queues (patches.py)
    patches.install(settings.websocket_compression, socketio.server.eio)
    backends = open_backends(settings, event_log=event_log)
    event_log = backends.event_log
    relay = Relay(settings, event_log, socketio.server, socketio.sleep,
                  socketio.start_background_task)
    node = Node(settings, event_log, socketio, relay, registry=backends.registry,
                rate_limiter=backends.rate_limiter,
                replication=None if settings.embedded else
                ReplicationMonitor(settings.redis_url, settings.redis_timeout))
    app.extensions["swarmdash"] = node
    # Outermost, in front of Socket.IO's middleware too: DNS rebinding (see hosts.py).
    policy = hosts.HostPolicy.from_settings(settings)
    app.wsgi_app = hosts.guard(  # type: ignore[method-assign, assignment]
        answer_health_first(app.wsgi_app, node), policy)
    app.register_blueprint(api)
    cors.install(app, OriginPolicy(settings.cors_allowed_origins))
    auth_web.install(app, AuthConfig.from_settings(settings))
    sockets.register(socketio, node)

    @app.get("/")
    def index() -> str:
        from .api import client_config  # the page gets what GET /api/v1/config answers

        config = client_config()[0].get_json()
        return render_template("index.html", node=settings.node_name, version=VERSION,
                               config=config)

    if (settings.secret_key in PLACEHOLDER_SECRET_KEYS
            and not event_log.embedded):  # a shared deployment, not the local demo
        log.warning("SECRET_KEY is the built-in development key: set your own in production")
    if event_log.embedded:
        log.info("node %s: embedded in-memory event log (single node; set REDIS_URL to scale out)",
                 settings.node_name)
    server = socketio.server
    if not server.manager_initialized:
        # Listen on the message queue from start-up, not from the first client's connect:
        # an emit from another node or process must not be missed by an idle node.
        server.manager_initialized = True
        server.manager.initialize()
    relay.start()
    if not event_log.embedded:
        def tell_dashboards(status: dict[str, Any]) -> None:
            server.emit(STORE_STATUS_EVENT, status, namespace="/", ignore_queue=True)

        node.store.notify = tell_dashboards
        socketio.start_background_task(node.store_watch_loop)
    metrics.CONNECTION_LIMIT.set(settings.worker_connections)
    metrics.CLIENT_LIMIT.set(settings.max_clients_per_node)
    socketio.start_background_task(node.heartbeat_loop)
    socketio.start_background_task(node.replication_loop)
    watchdog = SlowConsumerWatchdog(server.eio, settings.max_queue_size, socketio.sleep,
                                    settings.max_queue_bytes, settings.slow_consumer_grace_s)
    socketio.start_background_task(watchdog.run)
    return app
