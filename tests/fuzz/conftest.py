"""Fixtures of the fuzz tests: a real redis-server, in-process nodes on it, a live node.

Sizes: ``SWARMDASH_FUZZ_EXAMPLES`` generated inputs per in-process surface (default 10000),
a tenth of that (at least 300) against the live node; see tests/fuzz/README.md.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings

from swarmdash.app import create_app
from swarmdash.auth.apikeys import key_hash
from swarmdash.auth.tokens import issue_token
from swarmdash.eventlog.redis import RedisEventLog
from swarmdash.keys import Keys
from swarmdash.node import Node, node_of
from swarmdash.redisconn import connect
from swarmdash.settings import load_settings
from tests.fuzz.strategies import SCOPED_SWARM
from tests.helpers import Node as LiveNode
from tests.helpers import RedisServer, free_port, node_env, start_node

EXAMPLES = int(os.environ.get("SWARMDASH_FUZZ_EXAMPLES", "10000"))
LIVE_EXAMPLES = int(os.environ.get("SWARMDASH_FUZZ_LIVE_EXAMPLES", str(max(300, EXAMPLES // 10))))



class Credentials:
    """The API keys and viewer token the fuzzed nodes know (authentication on)."""

    secret_key = "fuzz-secret-0123456789abcdef0123456789abcdef"
    key = "sdk_fuzz_all_swarms_0123456789"
    scoped_key = "sdk_fuzz_alpha_only_0123456789"

    @classmethod
    def env(cls) -> dict[str, str]:
        return {"SECRET_KEY": cls.secret_key, "AUTH_DISABLED": "false",
                "API_KEYS": f"fuzz:{key_hash(cls.key)}:*,"
                            f"fuzz-alpha:{key_hash(cls.scoped_key)}:{SCOPED_SWARM}"}

    @classmethod
    def viewer_token(cls) -> str:
        return issue_token(cls.secret_key, swarms=None, ttl=3600, name="fuzz")

    @classmethod
    def ingest_headers(cls, credential: str) -> dict[str, str]:
        """Headers of an ingest request sent with ``credential`` (see strategies)."""
        value = {"all": f"Bearer {cls.key}", "scoped": f"Bearer {cls.scoped_key}",
                 "unknown": "Bearer sdk_not_a_key", "basic": f"Basic {cls.key}",
                 "empty_bearer": "Bearer ", "viewer_token": f"Bearer {cls.viewer_token()}",
                 "missing": None}[credential]
        return {} if value is None else {"Authorization": value}

    @classmethod
    def viewer_headers(cls) -> dict[str, str]:
        return {"Authorization": f"Bearer {cls.viewer_token()}"}


#: Limits of the fuzzed nodes: small enough that generated input crosses them often.
LIMITS = {"MAX_EVENTS_PER_REQUEST": "5", "MAX_PAYLOAD_BYTES": "300000",
          "MAX_SUBSCRIPTIONS_PER_CLIENT": "5"}
#: Fast relay, no batch windows, no ingest rate limit (the fuzzer is not a publisher), no
#: subscribe rate limit (it subscribes thousands of times on one connection), state limits
#: the generated agents and tasks never reach (their own tests are test_state_limits.py).
FAST = {"LOG_LEVEL": "warning", "RELAY_BLOCK_MS": "50", "FLUSH_TICK_MS": "5",
        "BATCH_WINDOW_AGENT_MS": "0", "BATCH_WINDOW_TASK_MS": "0",
        "BATCH_WINDOW_METRIC_MS": "0", "BATCH_WINDOW_LOG_MS": "0", "INGEST_RATE_LIMIT": "0",
        "SUBSCRIBE_RATE_LIMIT": "0", "MAX_AGENTS_PER_SWARM": "1000000",
        "MAX_OPEN_TASKS_PER_SWARM": "1000000", "MAX_SWARMS": "1000000",
        **LIMITS, **Credentials.env()}

_prefixes = itertools.count(1)


def fuzz(examples: int) -> settings:
    """Hypothesis settings of one fuzzed surface: many examples, no deadline, no database."""
    return settings(max_examples=examples, deadline=None, database=None, print_blob=True,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("fuzz-redis")).start()
    yield server
    server.stop()


def _stop(node: Node) -> None:
    node.stopping = True
    node.relay.stop()
    node.event_log.close()


@pytest.fixture(scope="module")
def redis_app(redis_server: RedisServer) -> Iterator[Flask]:
    """An in-process node on the real redis-server (message queue included), own key prefix."""
    env = {**FAST, "NODE_ID": "fuzz-http", "REDIS_URL": redis_server.url,
           "REDIS_KEY_PREFIX": f"fuzz{next(_prefixes)}",
           "MESSAGE_QUEUE_CHANNEL": f"fuzz-{redis_server.port}"}
    app = create_app(load_settings(environ=env, env_file=None), async_mode="threading")
    app.config["TESTING"] = True
    yield app
    _stop(node_of(app))


@pytest.fixture(scope="module")
def socket_app(redis_server: RedisServer) -> Iterator[Flask]:
    """An in-process node whose event log is the real redis-server, without a message queue
    (Flask-SocketIO's test client drives the handlers directly and cannot use one)."""
    settings_ = load_settings(environ={**FAST, "NODE_ID": "fuzz-socket"}, env_file=None)
    log = RedisEventLog(connect(redis_server.url, 2.0), keys=Keys(f"fuzz{next(_prefixes)}"))
    app = create_app(settings_, async_mode="threading", event_log=log)
    app.config["TESTING"] = True
    yield app
    _stop(node_of(app))


@pytest.fixture(scope="module")
def live_node(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[LiveNode]:
    """A node as in production: gunicorn's gevent worker on the real redis-server."""
    log_dir: Path = tmp_path_factory.mktemp("fuzz-live")
    env = node_env(redis_server.url, "fuzz-live", free_port(), auth=True,
                   REDIS_KEY_PREFIX=f"fuzz{next(_prefixes)}",
                   MESSAGE_QUEUE_CHANNEL=f"fuzz-live-{redis_server.port}", **FAST)
    node = start_node("fuzz-live", "gunicorn", env, log_dir)
    yield node
    node.process.stop()


def tracebacks(node: LiveNode) -> int:
    """Python tracebacks in a live node's log so far."""
    try:
        return node.process.log_path.read_text(errors="replace").count("Traceback (most recent")
    except OSError:
        return 0


@pytest.fixture
def no_new_tracebacks(live_node: LiveNode) -> Iterator[Callable[[], Any]]:
    """Fails the test when the live node logged a traceback during it."""
    before = tracebacks(live_node)
    yield lambda: tracebacks(live_node) - before
    assert tracebacks(live_node) == before, live_node.process.tail(80)
