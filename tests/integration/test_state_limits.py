"""The state limits on a real redis-server (ingest.lua as production runs it), checked with
the same contract as the in-memory log."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from swarmdash.eventlog import EventLog, MemoryEventLog, StateLimits
from swarmdash.eventlog.redis import RedisEventLog
from swarmdash.keys import Keys
from swarmdash.redisconn import connect
from tests import statelimits
from tests.helpers import RedisServer
from tests.statelimits import LogFactory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("state-limits")) / "redis").start()
    yield server
    server.process.stop()


@pytest.fixture(params=["memory", "redis-server"])
def factory(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[LogFactory]:
    opened: list[EventLog] = []
    prefixes = itertools.count()

    def build(limits: StateLimits) -> EventLog:
        if request.param == "memory":
            log: EventLog = MemoryEventLog(limits=limits)
        else:  # a fresh key prefix: an empty log on the shared server
            log = RedisEventLog(connect(redis_server.url, 2.0), limits=limits,
                                keys=Keys(f"limits-{request.node.name}-{next(prefixes)}"))
        opened.append(log)
        return log

    yield build
    for log in opened:
        log.close()


@pytest.mark.parametrize("check", [statelimits.check_agents_per_swarm,
                                   statelimits.check_open_tasks_per_swarm,
                                   statelimits.check_swarms,
                                   statelimits.check_a_flood_leaves_a_bounded_snapshot])
def test_state_limits(factory: LogFactory, check: Callable[[LogFactory], None]) -> None:
    check(factory)
