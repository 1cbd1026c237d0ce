"""Run sizes: ``quick`` (CI smoke check, under 2 minutes), ``medium`` and ``full``."""

from __future__ import annotations

from dataclasses import dataclass, field

from .workload import Workload


@dataclass(frozen=True)
class Size:
    name: str
    workload: Workload
    steps: tuple[int, ...]     # client counts of the ramp
    reference: int             # the step at which figures 2-4 and the alert p99 are taken
    settle_s: float            # after a step's clients are in, before measuring
    measure_s: float           # length of a step's measurement window
    loadgen_processes: int
    sources: int               # loopback source addresses 127.0.0.2, …
    connect_rate: float        # new connections per second
    all_every: int = 20        # every n-th client subscribes to all swarms, the others to one
    systems: tuple[str, ...] = field(default=())  # empty = every system
    idle_clients: int = 0      # the idle step: clients on one node, nothing published
    idle_rate: float = 2000    # their connections per second
    scale_clients: int = 0     # the connection-scale step (0: not run)


SIZES = {
    "quick": Size("quick", Workload(agents=100, swarms=5), steps=(100,), reference=100,
                  settle_s=0.8, measure_s=2.5, loadgen_processes=2, sources=20,
                  connect_rate=200, idle_clients=200, idle_rate=400),
    "medium": Size("medium", Workload(agents=300, swarms=10), steps=(250, 500, 1000, 2000),
                   reference=250, settle_s=3.0, measure_s=6.0, loadgen_processes=3,
                   sources=100, connect_rate=300, idle_clients=2000),
    "full": Size("full", Workload(agents=1000, swarms=10),
                 steps=(500, 1000, 2000, 4000, 6000, 8000, 10000), reference=2000,
                 settle_s=5.0, measure_s=10.0, loadgen_processes=4, sources=250,
                 connect_rate=400, idle_clients=2000, scale_clients=9000),
}
