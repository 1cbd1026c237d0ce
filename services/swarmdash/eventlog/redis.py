"""Redis implementation: one Stream for all swarms, state hashes, Lua for atomic batches."""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import redis

from .. import codec
from ..cursor import ZERO, StreamId, format_id, parse_id
from ..events import Event, encode
from ..keys import AGENTS_SUFFIX, TASKS_DONE_SUFFIX, TASKS_SUFFIX, Keys
from ..storeerror import redis_errors
from .base import BatchKey, EventLog, IdempotencyConflict, Snapshot, state_field
from .limits import StateLimitExceeded, StateLimits
from .replicas import ReplicaWait


def _script(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def _as_sent(reply: Any, **_options: Any) -> Any:
    """A reply as Redis sent it: the relay's XREAD is read without redis-py's parsing."""
    return reply


class RedisEventLog(EventLog):
    def __init__(self, conn: redis.Redis, *, keys: Keys | None = None, maxlen: int = 100_000,
                 task_history: int = 200, blocking_conn: redis.Redis | None = None,
                 idempotency_ttl: int = 600, health_conn: redis.Redis | None = None,
                 idempotency_max_keys: int = 50_000, limits: StateLimits | None = None,
                 replicas: ReplicaWait | None = None):
        self.redis = conn
        self.blocking = blocking_conn or conn
        # The relay's reads come back unparsed and undecoded (the only XREAD of this client):
        # every event of the stream is read by every node, and redis-py's decoding of each
        # value and its dict per entry cost more than the JSON parsing that follows.
        self.blocking.set_response_callback("XREAD", _as_sent)
        self._reader: Any = None  # the relay's connection, held (see _read_new)
        # /health pings on connections of its own: a burst of requests holding the shared
        # pool must not make a busy but healthy node look dead to the proxy.
        self.health_conn = health_conn or conn
        self.keys = keys or Keys()
        self.maxlen = maxlen
        self.task_history = task_history
        self.idempotency_ttl = idempotency_ttl
        self.idempotency_max_keys = idempotency_max_keys
        self.limits = limits or StateLimits()
        self._ingest = conn.register_script(_script("ingest.lua"))
        self._snapshot = conn.register_script(_script("snapshot.lua"))
        self.replicas = replicas or ReplicaWait(0, 0)

    def append_once(self, events: list[Event], key: BatchKey | None
                    ) -> tuple[list[str], bool]:
        ttl = self.idempotency_ttl if key is not None else 0
        scope, name, digest = (key.scope, key.name, key.digest) if key else ("", "", "")
        args: list[Any] = [self.maxlen, self.task_history, self.keys.swarm_prefix,
                           AGENTS_SUFFIX, TASKS_SUFFIX, TASKS_DONE_SUFFIX, ttl, digest,
                           self.idempotency_max_keys, f"{time.time():.3f}",
                           self.limits.max_agents, self.limits.max_open_tasks,
                           self.limits.max_swarms]
        for event in events:
            target = state_field(event)
            kind, field, finished = target if target else ("-", "", False)
            args += [event["swarm"], kind, field, "1" if finished else "0", event["ts"],
                     encode(event)]
        keys = [self.keys.stream, self.keys.swarms, self.keys.idempotency(scope, name),
                self.keys.idempotency_index(scope)]
        with redis_errors():
            if not self.replicas.needed:
                reply = self._ingest(keys=keys, args=args)
            else:
                # The script and WAIT on one connection: WAIT counts the replicas holding this
                # connection's writes. A batch stored earlier under the key (a retry) may not
                # be replicated yet, so a duplicate answer waits for a fresh mark instead.
                reply = self.replicas.run(
                    self.redis, lambda pipe: self._ingest(keys=keys, args=args, client=pipe))
        if int(reply[0]) == 2:
            raise StateLimitExceeded(reply[1], reply[2], int(reply[3]))
        if int(reply[0]) == 3:
            assert key is not None
            raise IdempotencyConflict(key)
        seen, joined = reply
        if int(seen) and self.replicas.needed:
            with redis_errors():
                self.replicas.run(self.redis, None, self.keys.replication_mark)
        return joined.split(","), bool(int(seen))

    @staticmethod
    def _decode(entries: Any) -> list[Event]:
        out = []
        for sid, fields in entries:
            event = codec.loads(fields["e"])
            event["id"] = sid
            out.append(event)
        return out

    @staticmethod
    def _decode_raw(entries: Any) -> list[Event]:
        """Entries of an unparsed XREAD reply: ``[id, [b"e", json]]`` each (ingest.lua writes
        one field per entry)."""
        out = []
        for sid, fields in entries:
            event = codec.loads(fields[1])
            event["id"] = sid.decode()
            out.append(event)
        return out

    @redis_errors()
    def _replicated(self, conn: redis.Redis, command: Callable[[Any], Any]) -> Any:
        """Run a read; with INGEST_MIN_REPLICAS, return it only once that many replicas hold
        everything it saw (a mark written after it on the same connection, then WAIT)."""
        if not self.replicas.needed:
            return command(conn)
        return self.replicas.run(conn, command, self.keys.replication_mark)

    def read(self, after: StreamId, count: int, block_ms: int | None = None) -> list[Event]:
        stream = self.keys.stream
        if block_ms:
            reply: Any
            if self.replicas.needed:
                reply = self._replicated(self.blocking, lambda c: c.execute_command(
                    "XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", stream,
                    format_id(after), NEVER_DECODE=True))
            else:
                reply = self._read_new(after, count, block_ms)
            return self._decode_raw(reply[0][1]) if reply else []
        entries: Any = self._replicated(self.redis, lambda c: c.xrange(
            stream, min="(" + format_id(after), max="+", count=count))
        return self._decode(entries)

    @redis_errors()
    def _read_new(self, after: StreamId, count: int, block_ms: int) -> Any:
        """The relay's XREAD BLOCK, on a connection taken from its pool once and held: a
        node reads after every append of the whole cluster, and the pool's checks on every
        borrow cost more than the read itself. A read that fails drops the connection's
        socket; the next one connects again (to the primary the sentinels name by then)."""
        conn = self._reader
        if conn is None:
            conn = self._reader = self.blocking.connection_pool.get_connection()
        try:
            conn.send_command("XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS",
                              self.keys.stream, format_id(after))
            return conn.read_response(disable_decoding=True)
        except BaseException:  # a timeout or a kill too: the reply must not be read later
            conn.disconnect()
            raise

    def tail(self, count: int) -> list[Event]:
        entries: Any = self._replicated(
            self.redis, lambda c: c.xrevrange(self.keys.stream, count=count))
        return self._decode(list(reversed(entries)))

    def _info(self) -> dict[str, Any]:
        try:
            with redis_errors():
                info: Any = self.redis.xinfo_stream(self.keys.stream)
        except redis.ResponseError:  # no such key yet
            return {}
        return dict(info)

    def last_id(self) -> StreamId:
        return self._last_of(self._info())

    def trimmed_upto(self) -> StreamId:
        return self._trimmed_of(self._info())

    def bounds(self) -> tuple[StreamId, StreamId]:
        info = self._info()  # one XINFO for both
        return self._trimmed_of(info), self._last_of(info)

    @staticmethod
    def _last_of(info: dict[str, Any]) -> StreamId:
        last = info.get("last-generated-id")
        return parse_id(last) if last else ZERO

    @staticmethod
    def _trimmed_of(info: dict[str, Any]) -> StreamId:
        # MAXLEN trimming does not move max-deleted-entry-id (only XDEL does), so when the
        # stream holds fewer entries than were ever added, everything before its first
        # entry is gone: report the highest ID below that first entry.
        deleted = info.get("max-deleted-entry-id")
        upto = parse_id(deleted) if deleted else ZERO
        if int(info.get("entries-added") or 0) > int(info.get("length") or 0):
            first = info.get("first-entry")
            if first:
                ms, seq = parse_id(first[0])
                below = (ms, seq - 1) if seq else (ms - 1, 2**64 - 1) if ms else ZERO
            else:  # everything was removed
                below = parse_id(info.get("last-generated-id") or "0-0")
            upto = max(upto, below)
        return upto

    def snapshot(self, swarm: str | None) -> Snapshot:
        reply = self._replicated(self.redis, lambda c: self._snapshot(
            keys=[self.keys.stream, self.keys.swarms],
            args=[self.keys.swarm_prefix, swarm or "*", AGENTS_SUFFIX, TASKS_SUFFIX], client=c))
        snap = Snapshot(cursor=parse_id(reply[0]))
        for i in range(1, len(reply), 3):
            name = reply[i]
            snap.agents[name] = {e["agent_id"]: e for e in map(codec.loads, reply[i + 1])}
            snap.tasks[name] = {str(e["data"]["task_id"]): e
                                for e in map(codec.loads, reply[i + 2])}
        return snap

    def ping(self) -> bool:
        try:
            return bool(self.health_conn.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        for conn in (self.redis, self.blocking, self.health_conn):
            conn.close()  # closing a client twice (when they are one) is harmless
