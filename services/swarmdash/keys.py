"""Every Redis key name SwarmDash uses, built in one place.

"Key" in this module means a Redis key name only. An API key appears by its id (the
``<api key id>`` below, never the secret); an idempotency key is the client's
``Idempotency-Key`` header value; stream positions are event ids / cursors.

``<prefix>:events``                 the event stream (one global order; IDs are cursors)
``<prefix>:swarms``                 set of swarm names seen
``<prefix>:swarm:<name>:agents``    hash agent_id -> latest agent event (JSON, with id)
``<prefix>:swarm:<name>:tasks``     hash task_id -> latest task event (JSON, with id)
``<prefix>:swarm:<name>:tasks:done``  zset of finished task ids by ts (bounds the task hash)
``<prefix>:idem:<api key id>:<idempotency key>``  digest and ids of a batch stored under an
                                    idempotency key of one API key (with a TTL)
``<prefix>:idem-index:<api key id>``  zset of that API key's idempotency keys by time stored
                                    (bounds them to IDEMPOTENCY_MAX_KEYS)
``<prefix>:cluster:nodes``          hash node name -> its last heartbeat record (JSON)
``<prefix>:cluster:alive:<node>``   present while the node heartbeats (expires after HEARTBEAT_TTL)
``<prefix>:ratelimit:<api key id>``  token bucket of one API key (hash tokens, ts; expires when
                                    full)
The Lua scripts in ``eventlog/`` receive :meth:`Keys.swarm_prefix` and append the
``:agents`` / ``:tasks`` / ``:tasks:done`` suffixes defined here.
"""

from __future__ import annotations

from dataclasses import dataclass

AGENTS_SUFFIX = ":agents"
TASKS_SUFFIX = ":tasks"
TASKS_DONE_SUFFIX = ":tasks:done"


@dataclass(frozen=True)
class Keys:
    """The Redis key names under ``prefix`` (``REDIS_KEY_PREFIX``)."""

    prefix: str = "swarmdash"

    @property
    def stream(self) -> str:
        return f"{self.prefix}:events"

    @property
    def swarms(self) -> str:
        return f"{self.prefix}:swarms"

    @property
    def swarm_prefix(self) -> str:
        return f"{self.prefix}:swarm:"

    def idempotency(self, scope: str, idempotency_key: str) -> str:
        """Where a batch stored under ``idempotency_key`` (the client's header) is recorded,
        scoped to the API key id ``scope`` (ids have no ':')."""
        return f"{self.prefix}:idem:{scope}:{idempotency_key}"

    def idempotency_index(self, scope: str) -> str:
        return f"{self.prefix}:idem-index:{scope}"

    @property
    def cluster_nodes(self) -> str:
        return f"{self.prefix}:cluster:nodes"

    def node_alive(self, node: str) -> str:
        return f"{self.prefix}:cluster:alive:{node}"

    def rate_limit(self, api_key_id: str) -> str:
        return f"{self.prefix}:ratelimit:{api_key_id}"

    def agents(self, swarm: str) -> str:
        return f"{self.swarm_prefix}{swarm}{AGENTS_SUFFIX}"

    def tasks(self, swarm: str) -> str:
        return f"{self.swarm_prefix}{swarm}{TASKS_SUFFIX}"

    def tasks_done(self, swarm: str) -> str:
        return f"{self.swarm_prefix}{swarm}{TASKS_DONE_SUFFIX}"

    @property
    def replication_mark(self) -> str:
        """Written by a reader right after a read, so WAIT can tell when replicas hold what
        it read (see :mod:`swarmdash.eventlog.redis`)."""
        return f"{self.prefix}:replication:mark"
