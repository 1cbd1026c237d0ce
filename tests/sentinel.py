"""A primary, replicas and sentinels (``redis-server --sentinel``) on free ports, for tests.

The topology of :mod:`swarmdash.cluster.redis` run as :class:`tests.helpers.Process` children;
:meth:`SentinelRedis.stop` stops every one of them inside a timeout, whatever state the
test left them in (frozen, killed, demoted).
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

from swarmdash.cluster.redis import SentinelTiming, Topology
from tests.helpers import Process, free_port, wait_for

#: Fast enough for a test, slow enough not to fail over on a loaded 2-core machine.
TEST_TIMING = SentinelTiming(down_after_ms=1500, failover_timeout_ms=6000)


class SentinelRedis:
    def __init__(self, data_dir: Path, replicas: int = 2, sentinels: int = 3,
                 timing: SentinelTiming = TEST_TIMING):
        self.topology = Topology(data_dir, [free_port() for _ in range(replicas + 1)],
                                 [free_port() for _ in range(sentinels)], timing)
        self.procs: dict[str, Process] = {}

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL the nodes use."""
        return self.topology.url

    def _spawn(self, name: str, argv: list[str]) -> int:
        proc = Process(name, argv, self.topology.dir).start()
        self.procs[name] = proc
        assert proc.pid is not None
        return proc.pid

    def start(self) -> SentinelRedis:
        try:
            self.topology.start(self._spawn)
            wait_for(self.topology.ready, 30, interval=0.1,
                     message="primary, replicas and sentinels ready")
        except BaseException:
            self.stop()
            raise
        return self

    def server(self, port: int) -> Process:
        return self.procs[self.topology.server_name(self.topology.server_index(port))]

    def primary(self) -> int:
        return self.topology.primary_port()

    def kill_primary(self) -> int:
        """SIGKILL the current primary; returns its port."""
        port = self.primary()
        self.server(port).kill()
        return port

    def wait_new_primary(self, old: int, timeout: float = 30) -> int:
        def moved() -> int | None:
            port = self.primary()
            return port if port != old and self.topology.settled(port) else None
        port: int = wait_for(moved, timeout, interval=0.1,
                             message=f"Sentinel to promote a replica of {old}")
        return port

    def restart(self, port: int) -> None:
        self.server(port).start()

    def stop(self) -> None:
        for proc in self.procs.values():  # a frozen process cannot handle SIGTERM
            with contextlib.suppress(ProcessLookupError):
                proc.signal(signal.SIGCONT)
        for proc in self.procs.values():
            proc.stop(10)


def free_port_run(count: int, attempts: int = 200) -> int:
    """The first of ``count`` consecutive free ports (the local cluster's Redis servers and
    sentinels sit on consecutive ports)."""
    import random

    from swarmdash.cluster.processes import port_free

    for _ in range(attempts):
        base = random.randint(20000, 60000 - count)
        if all(port_free("127.0.0.1", base + i) for i in range(count)):
            return base
    raise AssertionError(f"no {count} consecutive free ports")
