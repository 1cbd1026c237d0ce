"""How much agent and task state a swarm may hold, and the refusal past it (both event logs
enforce the same limits: ingest.lua in Redis, ``_check_limits`` in memory)."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import Settings


class StateLimitExceeded(ValueError):
    """A batch would take a swarm past a state limit: nothing of it was stored."""

    def __init__(self, setting: str, swarm: str, limit: int):
        if setting == "MAX_SWARMS":
            what = f"swarm {swarm!r} would be one more than {setting}={limit} swarms"
        else:
            kind = "agents" if setting == "MAX_AGENTS_PER_SWARM" else "open tasks"
            what = f"swarm {swarm!r} would hold more than {setting}={limit} {kind}"
        super().__init__(f"{what}; nothing was accepted")
        self.setting = setting
        self.swarm = swarm
        self.limit = limit


@dataclass(frozen=True)
class StateLimits:
    """How much agent and task state one swarm may hold, and how many swarms there may be."""

    max_agents: int = 1000
    max_open_tasks: int = 2000
    max_swarms: int = 1000

    @classmethod
    def from_settings(cls, s: Settings) -> StateLimits:
        return cls(s.max_agents_per_swarm, s.max_open_tasks_per_swarm, s.max_swarms)
